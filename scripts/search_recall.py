"""How well the built book's search finds its own glossary terms, before and after Korean search.

    jupyter-book build book/ && python scripts/search_recall.py [_build/html] [--min-recall 1.0]

For every Korean term in book/glossary.md and every page whose text contains it, the search should
return that page. The script emulates the search page (Sphinx's searchtools.js: every query term
must match, exactly or, for terms longer than two characters, as part of an index term) over
(1) the real index the build wrote, and (2) indexes it rebuilds from the pages' text with Sphinx's
default word splitter ("before") and with book/_ext/korean_search ("after"). It prints the recall of
each and exits 1 when the real index's recall is below --min-recall.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from korean_search import index_terms, query_terms  # noqa: E402

WORD = re.compile(r"\w+")


def glossary_terms(path: Path = ROOT / "book" / "glossary.md") -> list[str]:
    terms = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.search("[\uac00-\ud7a3]", cells[0]):  # 한국어 | English | 배우는 곳
            terms += [t.strip() for t in cells[0].split("/")]
    return terms


def page_texts(site: Path, docnames: list[str]) -> dict[str, str]:
    out = {}
    for doc in docnames:
        raw = (site / f"{doc}.html").read_text(encoding="utf-8")
        main = re.search(r'<main[^>]*>(.*)</main>', raw, re.S)
        raw = re.sub(r"<(script|style)\b.*?</\1>", " ", main.group(1) if main else raw, flags=re.S)
        # the previous/next links name the neighbouring chapters; Sphinx rightly does not index them for this page
        raw = re.sub(r"<footer\b.*?</footer>", " ", raw, flags=re.S)
        out[doc] = html.unescape(re.sub(r"<[^>]+>", " ", raw))
    return out


def build_index(texts: dict[str, str], split) -> dict[str, set]:
    index: dict[str, set] = {}
    for doc, text in texts.items():
        for term in split(text):
            index.setdefault(term.lower(), set()).add(doc)
    return index


def search(index: dict[str, set], query: str, split_query) -> set:
    """Pages that searchtools.js returns for ``query``."""
    words = [w for w in split_query(query.lower()) if not w.isdigit()]
    matched: dict[str, set] = {}
    for w in words:
        docs = set(index.get(w, ()))
        if len(w) > 2 and w not in index:
            for term, found in index.items():
                if w in term:
                    docs |= found
        for d in docs:
            matched.setdefault(d, set()).add(w)
    longer = len([w for w in set(words) if len(w) > 2])
    return {d for d, ws in matched.items() if len(ws) in (len(set(words)), longer)}


def recall(index, texts, terms, split_query) -> tuple[float, list[str]]:
    found = total = 0
    missed = []
    for term in terms:
        pages = {d for d, t in texts.items() if term in t}
        hits = search(index, term, split_query) & pages
        found, total = found + len(hits), total + len(pages)
        if pages - hits:
            missed.append(f"{term} ({len(pages - hits)}/{len(pages)} pages missed)")
    return (found / total if total else 1.0), missed


def real_index(site: Path) -> tuple[list[str], dict[str, set]]:
    raw = (site / "searchindex.js").read_text(encoding="utf-8")
    data = json.loads(raw[raw.index("(") + 1: raw.rindex(")")])
    docnames = data["docnames"]
    index: dict[str, set] = {}
    for key in ("terms", "titleterms"):
        for term, files in data[key].items():
            files = files if isinstance(files, list) else [files]
            index.setdefault(term, set()).update(docnames[f] for f in files)
    return docnames, index


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("site", nargs="?", default=str(ROOT / "_build" / "html"))
    p.add_argument("--min-recall", type=float, default=1.0)
    args = p.parse_args(argv)
    site = Path(args.site)
    if not (site / "searchindex.js").is_file():
        print(f"search_recall: no searchindex.js in {str(site)!r}; build the book first", file=sys.stderr)
        return 2
    docnames, index = real_index(site)
    texts = page_texts(site, docnames)
    terms = [t for t in glossary_terms() if any(t in text for text in texts.values())]
    default_split = lambda text: WORD.findall(text)  # noqa: E731  Sphinx's SearchLanguage.split
    korean_split = lambda text: [t for w in WORD.findall(text) for t in index_terms(w)]  # noqa: E731
    korean_query = lambda q: [t for w in WORD.findall(q) for t in query_terms(w)]  # noqa: E731
    rows = [("before: Sphinx default (rebuilt from page text)", build_index(texts, default_split), default_split),
            ("after: korean_search (rebuilt from page text)", build_index(texts, korean_split), korean_query),
            ("after: the built searchindex.js", index, korean_query)]
    print(f"{len(terms)} glossary terms appear in {len(docnames)} pages")
    result = 0.0
    for label, idx, split_query in rows:
        result, missed = recall(idx, texts, terms, split_query)
        print(f"{label:<50} recall {result:6.1%}" + (f"  missed: {', '.join(missed[:6])}" if missed else ""))
    return 0 if result >= args.min_recall else 1


if __name__ == "__main__":
    sys.exit(main())
