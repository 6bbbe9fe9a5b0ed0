"""Match scoring (pure): semantic similarity, IDF-weighted shared terms, which terms are worth showing."""

from __future__ import annotations

import html
import math

from kb.lang.text import jieba_tokens
from kb.models import content_hash
from kb.search.highlight import spans
from kb.search.match.vocab import domain_term

# Weights measured on eval/cbm/parts/need_pairs_*.jsonl (see eval/match_eval.py).
W_TITLE = 0.3  # titles are terse: a weaker but independent view of the candidate
W_DESC = 0.7
W_TERMS = 0.3  # share of the score from shared technical terms
FIELD_BONUS = 0.01  # same field nudges the score; TRL and region are shown but not scored, because
# engineers' labels accept less mature or out-of-area results and penalising them lost recall
GENERIC_DF = 0.15  # a term in more than this share of records is too generic to show as a reason
MAX_SHOWN_TERMS = 8
CACHE_MAX = 50_000
_TERM_CACHE: dict[str, frozenset[str]] = {}


def terms(text: str) -> frozenset[str]:
    """Technical-term candidates: jieba words (CBM dictionary) of 2+ characters, no bare numbers."""
    key = content_hash(text)
    got = _TERM_CACHE.get(key)
    if got is None:
        if len(_TERM_CACHE) > CACHE_MAX:
            _TERM_CACHE.clear()
        got = frozenset(t for t in jieba_tokens(text) if len(t) >= 2 and not t.replace(".", "").isdigit())
        _TERM_CACHE[key] = got
    return got


def idf(term_sets: list[frozenset[str]]) -> dict[str, float]:
    """Smoothed inverse document frequency, ln((N + 1) / (df + 0.5))."""
    df: dict[str, int] = {}
    for s in term_sets:
        for t in s:
            df[t] = df.get(t, 0) + 1
    n = len(term_sets)
    return {t: math.log((n + 1) / (d + 0.5)) for t, d in df.items()}


def term_overlap(q: frozenset[str], c: frozenset[str], weights: dict[str, float]) -> float:
    """IDF-weighted overlap, |q ∩ c|_w / sqrt(|q|_w · |c|_w) (a binary cosine)."""
    shared = sum(weights.get(t, 0.0) for t in q & c)
    norm = math.sqrt(sum(weights.get(t, 0.0) for t in q) * sum(weights.get(t, 0.0) for t in c))
    return shared / norm if norm else 0.0


def semantic(title_sim: float, desc_sim: float) -> float:
    """Weighted mean of the query's cosine with the title vector and with the description vector."""
    return (W_TITLE * title_sim + W_DESC * desc_sim) / (W_TITLE + W_DESC)


def combine(sem: float, lex: float, adjust: float) -> float:
    """Final score: (1 - W_TERMS)·semantic + W_TERMS·terms + fit adjustments."""
    return (1 - W_TERMS) * sem + W_TERMS * lex + adjust


def technical(word: str) -> bool:
    """A domain term (kb/search/match/vocab.py: 钻具 yes, 便于/常规/孔卡 no).

    Only for display: scoring uses every word, IDF-weighted, which measured better.
    """
    return domain_term(word)


def shown_terms(shared: frozenset[str], weights: dict[str, float], n_docs: int) -> list[str]:
    """Shared terms worth showing: technical, not generic here, not inside a longer shown term, rarest first."""
    # a shared term is in 2+ records by definition; small pools must still show some
    floor = math.log((n_docs + 1) / (max(GENERIC_DF * n_docs, 3) + 0.5))
    keep = [t for t in shared if weights.get(t, 0.0) >= floor and technical(t)]
    keep = [t for t in keep if not any(t != o and t in o for o in keep)]
    return sorted(keep, key=lambda t: (-weights.get(t, 0.0), -len(t), t))[:MAX_SHOWN_TERMS]


def highlight(text: str, marked: list[str]) -> str:
    """HTML-escaped text with the given terms wrapped in <mark>."""
    out: list[str] = []
    pos = 0
    for s, e in spans(text, sorted(marked, key=len, reverse=True)):
        out += [html.escape(text[pos:s]), "<mark>", html.escape(text[s:e]), "</mark>"]
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


