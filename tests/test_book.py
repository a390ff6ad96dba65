"""The book's shape: configuration, table of contents, and the form every chapter keeps."""

import json
from pathlib import Path

import pytest
import yaml

import vgglab

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))


def _toc_files():
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def _resolve(name):
    for ext in (".ipynb", ".md"):
        if (BOOK / f"{name}{ext}").exists():
            return BOOK / f"{name}{ext}"
    return None


CHAPTERS = [p for p in map(_resolve, _toc_files()) if p is not None and p.suffix == ".ipynb"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_config():
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["sphinx"]["config"]["language"] == "ko"
    repo = CONFIG["repository"]
    assert repo["url"] == vgglab.REPO_URL and repo["path_to_book"] == "book" and repo["branch"] == "main"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_every_toc_entry_exists():
    missing = [name for name in _toc_files() if _resolve(name) is None]
    assert not missing
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_form(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    owner_repo = vgglab.REPO_URL.removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{owner_repo}/blob/{CONFIG['repository']['branch']}/book/{path.name}"
    assert cells[0]["cell_type"] == "markdown" and link in _src(cells[0]) and "Colab에서 실행하기" in _src(cells[0])
    code = [c for c in cells if c["cell_type"] == "code"]
    assert any("vgglab.setup(" in _src(c) for c in code), "a setup cell calls vgglab.setup()"
    setup = next(c for c in code if "vgglab.setup(" in _src(c))
    assert 'if "google.colab" in sys.modules' in _src(setup), "vgglab is installed only in Colab"
    exercises = [c for c in cells if c["cell_type"] == "markdown" and (":class: dropdown" in _src(c) or "{dropdown}" in _src(c))]
    assert len(exercises) >= 2, "at least two exercises with hidden solutions"
    hidden = [c for c in code if "remove-cell" in c["metadata"].get("tags", []) and "assert" in _src(c)]
    assert hidden, "claims about runs are asserted in hidden cells"
    checked = [c for c in code if c.get("outputs") and "NBVAL_IGNORE_OUTPUT" not in _src(c) and "NBVAL_SKIP" not in _src(c)]
    assert checked, "some outputs are compared by nbval"
    counts = [c["execution_count"] for c in code]
    assert all(n is not None for n in counts) and counts == sorted(counts), "executed top to bottom"
    text = json.dumps([c.get("outputs", []) for c in code])
    assert '"output_type": "error"' not in text and "Traceback" not in text
    assert "\\r" not in text and "\\u0008" not in text, "no raw progress bars"
    first = next(c for c in code if c.get("outputs"))
    assert "프로파일" in json.dumps(first["outputs"], ensure_ascii=False), "the first output names the profile"
