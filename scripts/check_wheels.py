"""Check that requirements.txt installs from wheels on Linux, macOS (Apple Silicon) and Windows.

    python scripts/check_wheels.py                    # every platform, Python 3.13 (Colab's)
    python scripts/check_wheels.py --python 3.11      # another Python

pip evaluates environment markers (``; sys_platform == "darwin"``) for the machine it runs on, even with
``--platform``, so for each target this script first evaluates the markers for that platform, then asks pip to
resolve the resulting list from wheels only (``pip install --dry-run --only-binary=:all: --platform ...``). pip
reads each wheel's metadata from the index and downloads no package. Exit status 1 names the platform and the
requirement that has no wheel there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

# platform -> (pip platform tags, marker values)
PLATFORMS = {
    "linux-x86_64": (["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
                     {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                      "os_name": "posix"}),
    "macos-arm64": (["macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
                    {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                     "os_name": "posix"}),
    "windows-amd64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows",
                                      "platform_machine": "AMD64", "os_name": "nt"}),
}


def requirements_for(path: Path, markers: dict, python: str) -> list[str]:
    """The lines of a requirements file whose markers hold on the given platform, markers removed."""
    env = {**default_environment(), **markers, "python_version": python, "python_full_version": f"{python}.0"}
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):  # comments, and "-e ." (the package itself is pure Python)
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            out.append(str(req))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requirements", default=str(ROOT / "requirements.txt"))
    p.add_argument("--python", default="3.13")
    p.add_argument("--platforms", nargs="+", default=list(PLATFORMS), choices=list(PLATFORMS))
    args = p.parse_args(argv)
    failed = []
    for name in args.platforms:
        tags, markers = PLATFORMS[name]
        reqs = requirements_for(Path(args.requirements), markers, args.python)
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "requirements.txt"
            listing.write_text("\n".join(reqs) + "\n", encoding="utf-8")
            cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                   "--only-binary=:all:", "--python-version", args.python, "--target", str(Path(tmp) / "t"),
                   *[a for t in tags for a in ("--platform", t)], "-r", str(listing)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        if proc.returncode == 0:
            print(f"{name}: {len(reqs)} requirements, all from wheels (Python {args.python})")
        else:
            failed.append(name)
            print(f"{name}: FAILED (Python {args.python}): {' '.join(errors) or proc.stderr.strip()[-300:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
