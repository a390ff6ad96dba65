"""The book's shape: configuration, table of contents, and the form every chapter keeps."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
MIN_CODE_CELLS = 5  # fewer code cells than this: a placeholder waiting for its chapter, not a chapter yet


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


def _nb(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _strings(obj):
    """Every string inside a JSON value: output text, whether stored as one string or a list of lines."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _code(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _colab_link(filename):
    repo = CONFIG["repository"]
    owner_repo = repo["url"].removeprefix("https://github.com/").rstrip("/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{repo['branch']}/{repo['path_to_book']}/{filename}"


def test_config():
    assert CONFIG["execute"]["execute_notebooks"] == "off", "the book renders committed outputs"
    assert CONFIG["sphinx"]["config"]["language"] == "ko"
    repo = CONFIG["repository"]
    assert repo["url"] == "https://github.com/vgglab/vgglab"
    assert repo["path_to_book"] == "book" and repo["branch"] == "main"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_repository_button"] is True
    # sphinxcontrib-bibtex resolves these against the source folder (book/).
    assert all((BOOK / f).is_file() for f in CONFIG["bibtex_bibfiles"])


def test_package_installs_from_the_configured_repository():
    """The Colab setup cell installs vgglab from vgglab.REPO_URL; it must be the book's repository."""
    vgglab = pytest.importorskip("vgglab")
    assert vgglab.REPO_URL == CONFIG["repository"]["url"]


def test_every_toc_entry_exists():
    missing = [name for name in _toc_files() if _resolve(name) is None]
    assert not missing, f"listed in _toc.yml but missing in book/: {missing}"
    assert len(CHAPTERS) >= 2


def test_chapters_are_numbered_in_reading_order():
    """The table of contents reads the chapter files in the order of their numbers, and lists every one."""
    numbered = [name for name in _toc_files() if re.match(r"\d\d_", name)]
    numbers = [int(name[:2]) for name in numbered]
    assert numbers == list(range(1, len(numbers) + 1)), f"chapters out of reading order in _toc.yml: {numbered}"
    on_disk = sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.ipynb"))
    assert sorted(numbered) == on_disk, "every chapter file is in the table of contents, and only those"


def _page_links(text):
    """Links to other pages of the book (``[...](12_regularization.ipynb)`` or ``(glossary.md#...)``)."""
    return [t for t in re.findall(r"\]\(([^)\s:]+?\.(?:ipynb|md))(?:#[^)\s]*)?\)", text)]


def test_every_link_between_pages_points_at_a_page():
    pages = sorted(BOOK.glob("*.ipynb")) + sorted(BOOK.glob("*.md"))
    broken = []
    for page in pages:
        text = "".join(_src(c) for c in _nb(page)["cells"] if c["cell_type"] == "markdown") \
            if page.suffix == ".ipynb" else page.read_text(encoding="utf-8")
        broken += [f"{page.name} -> {target}" for target in _page_links(text) if not (BOOK / target).is_file()]
    assert not broken, broken


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_colab_badge(path):
    first = _nb(path)["cells"][0]
    assert first["cell_type"] == "markdown"
    links = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)\s]+)\)", _src(first))
    assert links == [_colab_link(path.name)], "the first cell is a Colab badge pointing at this very notebook"
    assert "colab-badge.svg" in _src(first) and "Colab에서 실행하기" in _src(first)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_outputs_are_clean(path):
    nb = _nb(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(_code(nb)):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"code cell {i} has an error output"
            text = "".join(_strings(out))
            assert "Traceback" not in text, f"code cell {i} shows a traceback"
            assert "\r" not in text and "\b" not in text, (
                f"code cell {i} has raw progress-bar characters (\\r or backspace): use verbose=2")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_form(path):
    nb = _nb(path)
    code = _code(nb)
    if len(code) < MIN_CODE_CELLS:
        pytest.skip(f"{path.name} is a placeholder ({len(code)} code cells < {MIN_CODE_CELLS}); its chapter is not written yet")
    cells = nb["cells"]

    counts = [c["execution_count"] for c in code]
    assert all(n is not None for n in counts), "every code cell has been executed"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), "executed once, top to bottom"

    setup = [c for c in code if "vgglab.setup(" in _src(c)]
    assert setup, "a setup cell calls vgglab.setup()"
    assert 'if "google.colab" in sys.modules' in _src(setup[0]), "vgglab is installed only in Colab"

    exercises = [c for c in cells if c["cell_type"] == "markdown"
                 and (":class: dropdown" in _src(c) or "{dropdown}" in _src(c))]
    assert len(exercises) >= 2, "at least two exercises, each with its solution in its own dropdown"

    hidden = [c for c in code if "remove-cell" in c["metadata"].get("tags", []) and "assert" in _src(c)]
    assert hidden, "claims about training runs are asserted in hidden cells (tag remove-cell)"
    folded = [c for c in code if "remove-cell" in c["metadata"].get("tags", [])
              and not (c["metadata"].get("cellView") == "form" and c["metadata"].get("jupyter", {}).get("source_hidden"))]
    assert not folded, "check cells are folded where a reader runs the notebook (Colab cellView form, Jupyter source_hidden)"

    quiet = {"nbval-ignore-output", "nbval-skip"}
    checked = [c for c in code if c.get("outputs") and not quiet & set(c["metadata"].get("tags", []))]
    assert checked, "at least one output (a count, a shape) is compared by nbval"
    visible = [i for i, c in enumerate(code) if re.search(r"#\s*NBVAL", _src(c))]
    assert not visible, f"code cells {visible} tell nbval what to do in a comment the reader sees; use the cell's tags"

    # Without the IPython lexer the `!pip` line in the setup cell breaks the strict (-W) build.
    assert nb["metadata"].get("language_info", {}).get("pygments_lexer") == "ipython3", (
        "executed by a Jupyter kernel (language_info.pygments_lexer = ipython3)")

    first = next((c for c in code if c.get("outputs")), None)
    assert first is not None and "프로파일" in json.dumps(first["outputs"], ensure_ascii=False), (
        "the first output says which profile, data and device produced the outputs")


def test_bibliography_parses_and_holds_every_cited_key():
    """A malformed entry stops the whole build; a missing key is a broken citation."""
    pybtex = pytest.importorskip("pybtex.database")
    keys = set()
    for f in CONFIG["bibtex_bibfiles"]:
        keys |= set(pybtex.parse_file(str(BOOK / f)).entries)  # raises on a syntax error
    cited = set()
    for path in CHAPTERS:
        for cell in _nb(path)["cells"]:
            for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", _src(cell)):
                cited |= {k.strip() for k in group.split(",")}
    assert cited and not cited - keys, sorted(cited - keys)


# What a reader sees of a chapter holds no machinery: no machine paths, no stderr, no words about how the book is
# built or checked (those live in the maintainers' appendix and the README).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|Users|mnt|opt)/[\w.-]+")
BUILD_WORDS = re.compile(r"\b(?:CI|nbval|NBVAL|pytest)\b|지속적 통합")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_readers_see_no_machinery(path):
    found = []
    for i, cell in enumerate(_nb(path)["cells"]):
        text = _src(cell)
        if cell["cell_type"] == "markdown" and BUILD_WORDS.search(text):
            found.append(f"cell {i}: build words in prose: {BUILD_WORDS.search(text).group(0)!r}")
        hidden = "remove-cell" in cell["metadata"].get("tags", [])
        if cell["cell_type"] == "code" and not hidden and BUILD_WORDS.search(text):
            found.append(f"cell {i}: build words in visible code: {BUILD_WORDS.search(text).group(0)!r}")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"cell {i}: stderr output {''.join(_strings(out.get('text', '')))[:80]!r}")
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            shown = "".join(t for v in texts for t in _strings(v))  # not images: base64 may hold "/work/" by chance
            if MACHINE_PATH.search(shown):
                found.append(f"cell {i}: machine path in output: {MACHINE_PATH.search(shown).group(0)!r}")
    assert not found, found


def _glossary_rows():
    rows = []
    for line in (BOOK / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.search("[\uac00-\ud7a3]", cells[0]) and cells[0] != "한국어":
            rows.append(cells)
    return rows


def test_glossary_covers_every_term_two_chapters_introduce():
    """A term a chapter introduces as 한국어(english) in two or more chapters has a glossary entry, and every entry
    links to the page that teaches it."""
    introduced = {}
    for path in CHAPTERS:
        prose = "\n".join(_src(c) for c in _nb(path)["cells"] if c["cell_type"] == "markdown")
        for english in re.findall(r"[\uac00-\ud7a3]\(([a-z][a-z -]+)(?:,[^)]*)?\)", prose):  # lower case: not names
            introduced.setdefault(english.strip(), set()).add(path.name)
    rows = _glossary_rows()
    known = {e.strip().lower() for row in rows for e in re.sub(r"\(.*?\)", "", row[1]).split("/")}
    missing = sorted(e for e, pages in introduced.items() if len(pages) >= 2 and e not in known)
    assert not missing, f"terms introduced in two or more chapters but not in the glossary: {missing}"
    for korean, _, where in rows:
        targets = re.findall(r"\]\(([^)]+)\)", where)
        assert len(targets) == 1 and (BOOK / targets[0]).is_file(), f"{korean}: {where!r} links to no page"


# A Hangul syllable takes two columns of a fixed-width font but counts as one for an f-string width, so a padded
# Korean header (f"{'파라미터':>8}") puts the columns out of line; printed tables use vgglab.tables.text_table.
PADDED_HANGUL = re.compile(r"""\{'[^'{}]*[\uac00-\ud7a3][^'{}]*':[<>^]?\d+|\{"[^"{}]*[\uac00-\ud7a3][^"{}]*":[<>^]?\d+""")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_korean_literal_padded_by_width(path):
    found = [f"code cell {i}: {m.group(0)!r}" for i, cell in enumerate(_code(_nb(path)))
             for m in PADDED_HANGUL.finditer(_src(cell))]
    assert not found, f"pad Korean with vgglab.tables.text_table, not an f-string width: {found}"
