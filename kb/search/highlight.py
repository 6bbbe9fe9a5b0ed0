"""Query terms marked in hit text."""

from __future__ import annotations

import html
import re

from kb.text import fold, jieba_tokens


def query_terms(query: str) -> list[str]:
    """Words worth highlighting: jieba words of 2+ characters (or Latin words of 3+), longest first."""
    terms = {t for t in jieba_tokens(query) if len(t) >= 2 and not (t.isascii() and len(t) < 3)}
    return sorted(terms, key=len, reverse=True)


def spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of the terms in the text, case- and width-insensitive."""
    if not terms:
        return []
    folded = fold(text)
    if len(folded) != len(text):  # NFKC changed the length; fall back to plain lower-casing
        folded = text.lower()
    pattern = re.compile("|".join(re.escape(t) for t in terms))
    return [(m.start(), m.end()) for m in pattern.finditer(folded)]


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
