"""Query terms marked in hit text."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

from kb.lang.text import fold, jieba_tokens


# cached: a search marks ten hits with the same query (the profile at 100k chunks showed the query
# tokenized again for every hit, 17% of a hybrid search)
@lru_cache(maxsize=1024)
def query_terms(query: str) -> tuple[str, ...]:
    """Words worth highlighting: jieba words of 2+ characters (or Latin words of 3+), longest first."""
    terms = {t for t in jieba_tokens(query) if len(t) >= 2 and not (t.isascii() and len(t) < 3)}
    return tuple(sorted(terms, key=len, reverse=True))


def _term_pattern(term: str) -> str:
    """A Latin word matches whole (with a plural -s/-es): "gas" marks "gas" and "gases", never the
    "gas" inside "regasification"; Chinese terms match anywhere (Chinese has no word boundaries)."""
    if not term.isascii():
        return re.escape(term)
    head = r"(?<![0-9a-z])" if term[:1].isalnum() else ""
    tail = r"(?:e?s)?(?![0-9a-z])" if term[-1:].isalnum() else ""
    return f"{head}{re.escape(term)}{tail}"


@lru_cache(maxsize=1024)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(_term_pattern(t) for t in terms))


def spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of the terms in the text, case- and width-insensitive."""
    if not terms:
        return []
    folded = fold(text)
    if len(folded) != len(text):  # NFKC changed the length; fall back to plain lower-casing
        folded = text.lower()
    return [(m.start(), m.end()) for m in _pattern(tuple(terms)).finditer(folded)]


def mark(text: str, query: str, open_tag: str = "<mark>", close_tag: str = "</mark>", escape: bool = True) -> str:
    """The text with query terms wrapped in tags (HTML-escaped around them by default)."""
    out: list[str] = []
    pos = 0
    esc = html.escape if escape else (lambda s: s)
    for s, e in spans(text, query_terms(query)):
        out += [esc(text[pos:s]), open_tag, esc(text[s:e]), close_tag]
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out)
