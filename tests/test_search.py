"""The book's Korean search language (book/_ext/korean_search.py) and the recall script over it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(ROOT / "scripts"))

korean_search = pytest.importorskip("korean_search")  # needs Sphinx
import search_recall  # noqa: E402


def test_index_terms_keep_words_and_add_bigrams():
    assert korean_search.index_terms("정규화는") == ["정규화는", "정규", "규화", "화는"]
    assert korean_search.index_terms("모델") == ["모델"]  # two syllables: the word itself
    assert korean_search.index_terms("VGG는") == ["VGG", "는"]
    assert korean_search.index_terms("dropout") == ["dropout"]
    assert korean_search.query_terms("정규화") == ["정규", "규화"]
    assert korean_search.query_terms("풀링") == ["풀링"]


def test_sphinx_split_indexes_a_sentence():
    lang = korean_search.SearchKorean({})
    terms = lang.split("배치 정규화(batch normalization)는 모델을 빠르게 학습시킵니다.")
    for term in ("배치", "정규", "규화", "batch", "normalization", "모델", "학습"):
        assert term in terms, term


def test_search_finds_words_with_particles_only_with_korean_search():
    texts = {"a": "모델을 학습합니다. 기울기가 사라집니다.", "b": "이 모델은 크다. 기울기 소실", "c": "풀링 없음"}
    default = lambda t: search_recall.WORD.findall(t)  # noqa: E731
    korean = lambda t: [x for w in search_recall.WORD.findall(t) for x in korean_search.index_terms(w)]  # noqa: E731
    query = lambda q: [x for w in search_recall.WORD.findall(q) for x in korean_search.query_terms(w)]  # noqa: E731
    before, after = search_recall.build_index(texts, default), search_recall.build_index(texts, korean)
    assert search_recall.search(before, "모델", default) == set()  # only 모델을, 모델은 in the index
    assert search_recall.search(after, "모델", query) == {"a", "b"}
    assert search_recall.search(before, "기울기", default) == {"b"}  # exact hit: partial matching is skipped
    assert search_recall.search(after, "기울기", query) == {"a", "b"}
    assert search_recall.search(after, "기울기 소실", query) == {"b"}  # every query term must match
    assert search_recall.search(after, "풀링", query) == {"c"}


def test_glossary_terms_are_read_from_the_book():
    terms = search_recall.glossary_terms()
    assert {"수용 영역", "배치 정규화", "드롭아웃", "에포크", "배치"} <= set(terms)
    assert not any(t.isascii() for t in terms)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_search_page_splits_queries_like_python():
    queries = ["정규화", "배치 정규화", "VGG는 3x3", "수용 영역", "dropout", "가중치 감쇠를"]
    js = korean_search.JS_SPLITTER + "\nfor (const q of %s) console.log(JSON.stringify(splitQuery(q)));" % (
        str(queries).replace("'", '"'))
    lines = subprocess.run(["node", "-e", js], capture_output=True, text=True, check=True).stdout.splitlines()
    import json

    expected = [[t for w in search_recall.WORD.findall(q) for t in korean_search.query_terms(w)] for q in queries]
    assert [json.loads(line) for line in lines] == expected
