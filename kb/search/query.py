"""A search request as the retrievers see it: the cleaned text, its translations, filters and depth."""

from __future__ import annotations

from dataclasses import dataclass, field

from kb.errors import BadQueryError
from kb.lang.text import normalize

MAX_QUERY = 2000


def clean_query(query: str) -> str:
    """A normalised query; empty or punctuation-only queries are refused, long ones cut."""
    q = normalize(query or "")[:MAX_QUERY]
    if not any(ch.isalnum() for ch in q):
        raise BadQueryError("query is empty or has no letters, digits or Chinese characters")
    return q


@dataclass(frozen=True)
class Query:
    """What every retriever gets: ``k`` hits wanted, equality filters and a heading-path prefix.

    ``translated`` is the glossary translation (both sides); ``translated_lex`` adds dictionary words,
    for BM25 only: a passage must contain them, while in a query vector their noise pulls it anywhere.
    """

    text: str
    k: int
    filters: dict[str, str] = field(default_factory=dict)
    section: str | None = None
    translated: str = ""
    translated_lex: str = ""
