"""The Colab install line of every chapter pins the exact package commit the chapter was executed with.

A learner who opens a chapter in Colab installs ``vgglab @ git+<repository>@<commit>``: a full commit hash,
never a branch, so the package cannot move under the chapter. Where the git history is at hand, the commit
must exist and the package (``vgglab/``, ``pyproject.toml``) must be unchanged since it; after changing the
package, commit it and run ``python scripts/pin_install.py`` (see the README).
"""

import importlib.util
import json
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("pin_install", ROOT / "scripts" / "pin_install.py")
pin_install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_install)


def _git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_install_line_pins_a_full_commit_of_the_book_repository(path):
    import vgglab

    url, ref = pin_install.pinned(path)
    assert url == vgglab.REPO_URL
    assert ref is not None and re.fullmatch(r"[0-9a-f]{40}", ref), (
        f"{path.name} installs vgglab@{ref}; pin a full commit: python scripts/pin_install.py")


def test_pinned_commit_is_the_package_in_this_tree():
    refs = {pin_install.pinned(p)[1] for p in CHAPTERS}
    assert len(refs) == 1, f"the chapters pin different commits: {sorted(map(str, refs))}"
    (sha,) = refs
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history here (.git is absent): the pinned commit cannot be checked")
    if _git("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
        if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            pytest.skip(f"commit {sha} is not in this shallow clone's history; fetch more history to check it")
        pytest.fail(f"the chapters pin commit {sha}, which is not in this repository's history "
                    "(was the package commit rebased away?); re-pin: python scripts/pin_install.py")
    changed = _git("diff", "--name-only", sha, "--", *pin_install.PACKAGE_PATHS).stdout.split()
    assert not changed, (f"the package changed since the pinned commit {sha[:12]} ({', '.join(changed)}): commit it, "
                         "then run python scripts/pin_install.py and commit the notebooks")


def test_pin_script_check_mode_agrees():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history here (.git is absent)")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("shallow clone: the latest package commit may be missing")
    assert pin_install.main(["--check"]) == 0


def test_pin_script_changes_only_the_install_line(tmp_path):
    source = CHAPTERS[0]
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert pin_install.pin(copy, sha) is True
    before, after = source.read_text(encoding="utf-8").splitlines(), copy.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 1
    assert changed[0][1].endswith(f'vgglab@{sha}\\"\\n",') and "%pip install" in changed[0][1]
    assert pin_install.pin(copy, sha) is False  # already pinned


def test_pin_script_names_a_chapter_without_an_install_line(tmp_path, capsys):
    nb = json.loads(CHAPTERS[0].read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["source"] = [line for line in cell["source"] if "%pip install" not in line]
    bad = tmp_path / "16_new_chapter.ipynb"
    bad.write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    with pytest.raises(pin_install.PinError, match="16_new_chapter.ipynb: expected one Colab install line"):
        pin_install.pin(bad, "0" * 40)
    if (ROOT / ".git").exists() and shutil.which("git"):
        assert pin_install.main(["--check", str(bad)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "16_new_chapter.ipynb" in err


def test_install_does_not_pull_tensorflow():
    """Colab has TensorFlow already; installing vgglab must not bring (or replace) it. Walks the requirements of
    pyproject's dependencies as installed here, leaving out optional extras."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    seen, todo, pulled = set(), [Requirement(d) for d in deps], []
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        if name.startswith(("tensorflow", "tf-", "tf_")):
            pulled.append(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(req.name) or []]
        except metadata.PackageNotFoundError:
            pass
    assert not pulled, f"installing vgglab would pull {pulled}"
    assert {"keras", "numpy", "matplotlib", "pillow"} <= seen
