"""Pin every chapter's Colab install line to one commit of the package.

Each chapter's setup cell installs vgglab only in Colab:

    %pip install -q "vgglab @ git+https://github.com/vgglab/vgglab@<commit>"

A branch name there would give a learner whatever the branch holds on the day, not the package the chapter
was executed with. This script writes a full commit hash into that line of every ``book/*.ipynb``: by
default the latest commit that touched the package (``git log -1 -- vgglab pyproject.toml``). Only that
line changes; the notebook's JSON is otherwise left byte for byte as it was.

    python scripts/pin_install.py            # pin every chapter to the last package commit
    python scripts/pin_install.py --check    # exit 1 if a chapter is not pinned to it (changes nothing)
    python scripts/pin_install.py --sha SHA  # pin to another commit

Re-pin after committing a change to ``vgglab/`` or ``pyproject.toml``, then commit the notebooks separately,
so the pinned commit is the package the chapters run. A chapter without a recognisable install line is an
error that names the notebook.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PATHS = ("vgglab", "pyproject.toml")
# The pip line of the setup cell: "vgglab @ git+<repository URL>" with an optional "@<ref>" (a branch or commit).
INSTALL = re.compile(r'^(?P<head>\s*%pip install\b[^\n]*"vgglab @ git\+(?P<url>[^"@\s]+))(?:@(?P<ref>[^"\s]*))?'
                     r'(?P<tail>"[^\n]*\n?)$')
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class PinError(Exception):
    """A notebook or a commit that cannot be pinned, with the reason."""


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise PinError(f"git {' '.join(args)} failed: {detail.strip()}") from None


def package_commit() -> str:
    """The latest commit that touched the package: the default pin."""
    sha = _git("log", "-1", "--format=%H", "--", *PACKAGE_PATHS)
    if not FULL_SHA.match(sha):
        raise PinError(f"no commit touches {' or '.join(PACKAGE_PATHS)} in this repository's history")
    return sha


def check_commit(sha: str) -> str:
    """``sha`` as a full commit hash that exists here (an abbreviation or a ref is resolved)."""
    try:
        full = _git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
    except PinError:
        full = ""
    if not FULL_SHA.match(full):
        raise PinError(f"{sha!r} is not a commit of this repository")
    return full


def _source_lines(cell) -> list[str]:
    src = cell["source"]
    return src.splitlines(keepends=True) if isinstance(src, str) else list(src)


def install_lines(nb: dict) -> list[tuple[int, int, re.Match]]:
    """(cell index, line index, match) of every install line in the notebook's code cells."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for j, line in enumerate(_source_lines(cell)):
            m = INSTALL.match(line)
            if m:
                found.append((i, j, m))
    return found


def _read(path: Path) -> tuple[str, dict, tuple[int, int, re.Match]]:
    """The notebook's text, its JSON, and its one install line."""
    try:
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
    except (OSError, ValueError) as e:
        raise PinError(f"{path}: not a readable notebook ({type(e).__name__}: {e})") from None
    lines = install_lines(nb)
    if len(lines) != 1:
        raise PinError(f"{path.name}: expected one Colab install line (%pip install \"vgglab @ git+...\") in a code "
                       f"cell, found {len(lines)}")
    return raw, nb, lines[0]


def pinned(path: Path) -> tuple[str, str | None]:
    """The repository URL and the ref (a commit, a branch, or None) that the notebook's install line names."""
    m = _read(path)[2][2]
    return m["url"], m["ref"]


def pin(path: Path, sha: str, write: bool = True) -> bool:
    """Point the notebook's install line at ``sha``; True if it changed. Only that line of the file changes."""
    raw, nb, (i, j, m) = _read(path)
    if m["ref"] == sha:
        return False
    old = m.group(0)
    new = f"{m['head']}@{sha}{m['tail']}"
    # Replace the line's JSON string in the file itself, so indentation, key order and escapes stay as they were.
    old_json, new_json = json.dumps(old, ensure_ascii=False), json.dumps(new, ensure_ascii=False)
    if raw.count(old_json) != 1:
        raise PinError(f"{path.name}: the install line {old.strip()!r} occurs {raw.count(old_json)} times in the "
                       "file; expected exactly once")
    changed = raw.replace(old_json, new_json)
    expected = json.loads(raw)
    source = _source_lines(expected["cells"][i])
    source[j] = new
    expected["cells"][i]["source"] = source if isinstance(nb["cells"][i]["source"], list) else "".join(source)
    if json.loads(changed) != expected:
        raise PinError(f"{path.name}: rewriting the install line would change more than that line")
    if write:
        path.write_text(changed, encoding="utf-8")
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Pin the Colab install line of every chapter to one package commit.")
    p.add_argument("--sha", help="commit to pin (default: the latest commit that touched vgglab/ or pyproject.toml)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a chapter is not pinned to it")
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: book/*.ipynb)")
    args = p.parse_args(argv)
    try:
        sha = check_commit(args.sha) if args.sha else package_commit()
        notebooks = args.notebooks or sorted((ROOT / "book").glob("*.ipynb"))
        if not notebooks:
            raise PinError("no notebooks found in book/")
        stale = [nb for nb in notebooks if pin(nb, sha, write=not args.check)]
    except PinError as e:
        print(f"pin_install: {e}", file=sys.stderr)
        return 2
    if args.check:
        for nb in stale:
            print(f"{nb.name}: install line not pinned to {sha} (run python scripts/pin_install.py)", file=sys.stderr)
        return 1 if stale else 0
    print(f"{len(stale)} of {len(notebooks)} chapters re-pinned to {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
