"""Files that readers find whole or not at all: atomic writes with the usual file mode.

A leaf module: it imports nothing of vgglab. Records, checkpoints, test predictions and the data cache are all
written through ``atomic_write``, so a run killed in the middle of a write leaves the old file (or none), never half
of a new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def file_mode() -> int:
    """The mode a new file gets from ``open``: 0o666 less the process's umask (``tempfile`` would give 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    Raises ValueError naming the folder when it cannot be created or written to.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ValueError(f"output directory {str(path.parent)!r} is not writable: {e.strerror or e}") from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write JSON atomically: readers see the old file or the whole new one, never half of it."""
    atomic_write(Path(path), lambda f: f.write(json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")))
