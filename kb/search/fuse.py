"""Rank fusion of dense and BM25 hits (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Callable

Ranked = list[tuple[str, float]]
Fused = list[tuple[str, float, float | None, float | None]]


def minmax(hits: Ranked) -> dict[str, float]:
    """Scores scaled to [0, 1] over the list (x - min) / (max - min); a single hit scores 1."""
    if not hits:
        return {}
    lo, hi = min(s for _, s in hits), max(s for _, s in hits)
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in hits}


def relative_score(dense: Ranked, bm25: Ranked, w_dense: float, w_bm25: float) -> dict[str, float]:
    """Weighted sum of min-max normalised scores; a hit missing from one list scores 0 there."""
    return _weighted_sum(minmax(dense), minmax(bm25), w_dense, w_bm25)


def _weighted_sum(d: dict[str, float], b: dict[str, float], w_dense: float, w_bm25: float) -> dict[str, float]:
    return {i: w_dense * d.get(i, 0.0) + w_bm25 * b.get(i, 0.0) for i in d.keys() | b.keys()}


def dbsf(hits: Ranked) -> dict[str, float]:
    """Distribution-based scaling: (x - (mean - 3 sd)) / (6 sd), not clipped, so a score far above the
    rest of its list (a strong BM25 match) counts above 1."""
    if not hits:
        return {}
    n = len(hits)
    mean = sum(s for _, s in hits) / n
    sd = math.sqrt(sum((s - mean) ** 2 for _, s in hits) / n)
    return {i: (s - mean + 3 * sd) / (6 * sd) if sd > 0 else 1.0 for i, s in hits}


def distribution_score(dense: Ranked, bm25: Ranked, w_dense: float, w_bm25: float) -> dict[str, float]:
    """Weighted sum of distribution-scaled scores; a hit missing from one list scores 0 there."""
    return _weighted_sum(dbsf(dense), dbsf(bm25), w_dense, w_bm25)


def weighted_rrf(dense: Ranked, bm25: Ranked, w_dense: float, w_bm25: float, k: int = 60) -> dict[str, float]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank)."""
    out: dict[str, float] = {}
    for hits, w in ((dense, w_dense), (bm25, w_bm25)):
        for rank, (i, _) in enumerate(hits, start=1):
            out[i] = out.get(i, 0.0) + w / (k + rank)
    return out


def cross_language(hits: Ranked, translated: Ranked, other_language: set[str], k: int) -> Ranked:
    """Dense hits where each other-language passage keeps the better of its two similarities.

    ``translated`` are the hits of the query's glossary translation; a passage in the query's own
    language keeps its original score, so the translation only lifts passages it speaks to.
    """
    best = dict(hits)
    for i, s in translated:
        if i in other_language and s > best.get(i, -1.0):
            best[i] = s
    return sorted(best.items(), key=lambda t: (-t[1], t[0]))[:k]


def _select_fusion(method: str) -> Callable[[Ranked, Ranked, float, float], dict[str, float]]:
    methods = {"relative": relative_score, "dbsf": distribution_score, "rrf": weighted_rrf}
    if method not in methods:
        raise ValueError(f"unknown fusion {method!r}; valid: {', '.join(methods)}")
    return methods[method]


def fuse(dense: Ranked, bm25: Ranked, w_dense: float, w_bm25: float, method: str = "relative") -> Fused:
    """Fused ranking: (id, fused score, dense score or None, bm25 score or None), best first."""
    scores = _select_fusion(method)(dense, bm25, w_dense, w_bm25)
    d, b = dict(dense), dict(bm25)
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [(i, scores[i], d.get(i), b.get(i)) for i in order]
