"""The built book in a real browser: pages, assets, Korean fonts, formulas, Colab links and search.

These tests need the strict build and headless Chromium, so they run only when asked:

    jupyter-book build book/ -W -n --keep-going
    VGGLAB_BROWSER_SITE=_build/html VGGLAB_MATHJAX_DIR=<mathjax 3 es5 folder> pytest tests/test_browser.py

The site is served on 127.0.0.1. Requests that leave the machine are refused (the reader's browser
would make them; the test machine has no network) except the MathJax script, which is answered
from VGGLAB_MATHJAX_DIR (npm's ``mathjax@3``) so that the formulas are typeset by the real library.
Screenshots of every page are written to ``<site>/../screenshots`` for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = os.environ.get("VGGLAB_BROWSER_SITE")
pytestmark = pytest.mark.skipif(not SITE, reason="set VGGLAB_BROWSER_SITE to a built book (_build/html)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
KOREAN_FONTS = re.compile(r"Nanum|Noto Sans CJK|Noto Sans KR|Malgun|Apple SD Gothic", re.I)
HANGUL = re.compile("[\uac00-\ud7a3]")


sys.path.insert(0, str(ROOT / "scripts"))
search_recall = pytest.importorskip("search_recall")  # needs Sphinx, like the book


def _docnames(site: Path) -> list[str]:
    return search_recall.real_index(site)[0]


@pytest.fixture(scope="module")
def site():
    path = Path(SITE).resolve()
    if not (path / "searchindex.js").is_file():
        pytest.fail(f"VGGLAB_BROWSER_SITE={SITE!r} holds no built book (no searchindex.js)")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed (Debian: apt-get install chromium)")
    mathjax = os.environ.get("VGGLAB_MATHJAX_DIR")
    base = site[1]

    def route(r):
        url = r.request.url
        if url.startswith(base):
            return r.continue_()
        m = re.search(r"/mathjax@3/es5/(.+?)(\?|$)", url)
        if m and mathjax and (Path(mathjax) / m.group(1)).is_file():
            return r.fulfill(path=str(Path(mathjax) / m.group(1)))
        return r.abort()

    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900}, locale="ko-KR")
        context.route("**/*", route)
        yield context
        context.close()


def _open(browser, url):
    """Open ``url``; return the page and the problems seen while loading it (local ones only)."""
    page = browser.new_page()
    problems = []
    local = url.split("/")[2]

    def is_local(u):
        return u.split("/")[2:3] == [local]

    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and is_local(m.location.get("url") or url) and "ERR_FAILED" not in m.text else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}") if is_local(r.url) else None)
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if is_local(r.url) and r.status >= 400
            else None)
    page.goto(url, wait_until="networkidle")
    return page, problems


def test_every_page_opens_cleanly_with_its_images(site, browser):
    path, base = site
    shots = path.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    for doc in _docnames(path):
        page, problems = _open(browser, f"{base}{doc}.html")
        broken = page.evaluate("""() => [...document.querySelectorAll('main img')]
            .filter(i => i.src.startsWith(location.origin) && !(i.complete && i.naturalWidth > 0)).map(i => i.src)""")
        assert html_lang(page) == "ko", doc
        page.screenshot(path=str(shots / f"{doc}.png"), full_page=False)
        page.close()
        assert not problems, f"{doc}: {problems}"
        assert not broken, f"{doc}: images that did not load: {broken}"


def html_lang(page) -> str:
    return page.evaluate("() => document.documentElement.lang")


def test_korean_prose_is_drawn_with_a_korean_font(site, browser):
    path, base = site
    for doc in _docnames(path):
        page, _ = _open(browser, f"{base}{doc}.html")
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        nodes = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "main p, main h1"})["nodeIds"]
        texts = page.evaluate("""() => [...document.querySelectorAll('main p, main h1')]
            .map(e => [e.textContent, e.getClientRects().length > 0 && getComputedStyle(e).visibility === 'visible'])""")
        checked = 0
        for node, (text, visible) in zip(nodes, texts):
            if not visible or not HANGUL.search(text) or checked >= 3:
                continue
            fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            korean = [f for f in fonts if KOREAN_FONTS.search(f["familyName"]) and f["glyphCount"] > 0]
            assert korean, f"{doc}: Korean text drawn with {fonts} ({text[:40]!r})"
            checked += 1
        page.close()
        assert checked, f"{doc}: no Korean paragraph found"


def test_formulas_are_typeset(site, browser):
    if not os.environ.get("VGGLAB_MATHJAX_DIR"):
        pytest.skip("set VGGLAB_MATHJAX_DIR to MathJax 3's es5 folder (npm install mathjax@3)")
    path, base = site
    pages_with_math = 0
    for doc in _docnames(path):
        if "class=\"math" not in (path / f"{doc}.html").read_text(encoding="utf-8"):
            continue
        pages_with_math += 1
        page, problems = _open(browser, f"{base}{doc}.html")
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        counts = page.evaluate("""async () => { await MathJax.startup.promise;
            return [document.querySelectorAll('.math').length, document.querySelectorAll('mjx-container').length,
                    document.querySelectorAll('mjx-merror').length]; }""")
        page.close()
        assert counts[0] > 0 and counts[1] >= counts[0] and counts[2] == 0, f"{doc}: math, typeset, errors = {counts}"
        assert not problems, f"{doc}: {problems}"
    assert pages_with_math >= 1


def test_colab_buttons_point_at_each_chapter_on_main(site, browser):
    import yaml

    path, base = site
    repo = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    owner = repo["url"].removeprefix("https://github.com/")
    notebooks = [d for d in _docnames(path) if (ROOT / "book" / f"{d}.ipynb").exists()]
    assert notebooks
    for doc in notebooks:
        page, _ = _open(browser, f"{base}{doc}.html")
        links = set(page.evaluate("""() => [...document.querySelectorAll('a[href*="colab.research.google.com"]')]
            .map(a => a.href)"""))
        page.close()
        want = f"https://colab.research.google.com/github/{owner}/blob/{repo['branch']}/{repo['path_to_book']}/{doc}.ipynb"
        assert want in links and all(link == want for link in links if "/github/" in link), (doc, links)


def test_search_finds_every_glossary_term_on_every_page_that_uses_it(site, browser):
    path, base = site
    texts = search_recall.page_texts(path, _docnames(path))
    missed = []
    for term in search_recall.glossary_terms():
        pages = {d for d, t in texts.items() if term in t}
        if not pages:
            continue
        page, problems = _open(browser, f"{base}search.html?q={term}")
        page.wait_for_function("() => typeof Search !== 'undefined' && Search.status && Search.status.innerText.trim().length > 0")
        found = {h.rsplit("/", 1)[-1].split(".html")[0] for h in page.evaluate(
            "() => [...document.querySelectorAll('#search-results ul.search li a')].map(a => a.href)")}
        page.close()
        assert not problems, f"search {term!r}: {problems}"
        if pages - found:
            missed.append(f"{term}: {sorted(pages - found)}")
    assert not missed, f"search misses pages that use the term: {missed}"
