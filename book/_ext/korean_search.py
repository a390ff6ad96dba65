"""Korean full-text search for the book (a Sphinx search language for ``language: ko``).

Sphinx has no Korean search language, so by default it indexes whole space-separated words with
their particles and endings attached (``모델을``, ``정규화는``), and a search for ``모델`` finds nothing.
Korean attaches particles without a space, so splitting off particles by rule is fragile. This
language indexes every run of Hangul whole and, when it is longer than two syllables, also as its
syllable bigrams (``정규화는`` -> ``정규화는``, ``정규``, ``규화``, ``화는``); the search page splits a
query the same way, and a page must contain every bigram of the query. Non-Hangul runs inside a
word are indexed on their own (``VGG는`` -> ``VGG``, ``는``), so English terms are found as well.
"""

from __future__ import annotations

import re

from sphinx.search import SearchLanguage

_HANGUL = "\uac00-\ud7a3"
_RUNS = re.compile(f"[{_HANGUL}]+|[^{_HANGUL}]+")


def index_terms(word: str) -> list[str]:
    """The index terms of one word (a run of word characters)."""
    out = []
    for run in _RUNS.findall(word):
        out.append(run)
        if len(run) > 2 and "\uac00" <= run[0] <= "\ud7a3":
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


def query_terms(word: str) -> list[str]:
    """The terms a query word is looked up by: Hangul runs longer than two syllables as bigrams only."""
    out = []
    for run in _RUNS.findall(word):
        if len(run) > 2 and "\uac00" <= run[0] <= "\ud7a3":
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


# The JavaScript twin of query_terms, used by the search page (Sphinx calls it splitQuery).
JS_SPLITTER = r"""
function splitQuery(query) {
  const out = [];
  for (const word of query.split(/[^\p{L}\p{N}_]+/gu)) {
    if (!word) continue;
    for (const run of word.match(/[\uac00-\ud7a3]+|[^\uac00-\ud7a3]+/g)) {
      if (run.length > 2 && /^[\uac00-\ud7a3]/.test(run)) {
        for (let i = 0; i + 2 <= run.length; i++) out.push(run.slice(i, i + 2));
      } else {
        out.push(run);
      }
    }
  }
  return out;
}
"""


class SearchKorean(SearchLanguage):
    lang = "ko"
    language_name = "Korean"
    js_splitter_code = JS_SPLITTER

    def split(self, input: str) -> list[str]:
        return [term for word in self._word_re.findall(input) for term in index_terms(word)]


def setup(app):
    app.add_search_language(SearchKorean)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
