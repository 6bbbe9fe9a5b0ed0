"""Rank fusion over any number of named ranked lists (pure functions).

Each list is scaled on its own (min-max, distribution-based or reciprocal rank), then the scaled
scores are summed with one weight per list name; a hit missing from a list scores 0 there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

Ranked = list[tuple[str, float]]
Scaler = Callable[[Ranked], dict[str, float]]
RRF_K = 60


class Fused(tuple[str, float, dict[str, float]]):
    """(id, fused score, raw score per list the hit appeared in)."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return self[0]

    @property
    def score(self) -> float:
        return self[1]

    @property
    def parts(self) -> dict[str, float]:
        return self[2]


def minmax(hits: Ranked) -> dict[str, float]:
    """Scores scaled to [0, 1] over the list (x - min) / (max - min); a single hit scores 1."""
    if not hits:
        return {}
    lo, hi = min(s for _, s in hits), max(s for _, s in hits)
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in hits}


def dbsf(hits: Ranked) -> dict[str, float]:
    """Distribution-based scaling: (x - (mean - 3 sd)) / (6 sd), not clipped, so a score far above the
    rest of its list (a strong BM25 match) counts above 1."""
    if not hits:
        return {}
    n = len(hits)
    mean = sum(s for _, s in hits) / n
    sd = math.sqrt(sum((s - mean) ** 2 for _, s in hits) / n)
    return {i: (s - mean + 3 * sd) / (6 * sd) if sd > 0 else 1.0 for i, s in hits}


def reciprocal_rank(hits: Ranked, k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank, 1 / (k + rank): weighted and summed, this is RRF."""
    out: dict[str, float] = {}
    for rank, (i, _) in enumerate(hits, start=1):
        out[i] = out.get(i, 0.0) + 1.0 / (k + rank)
    return out


SCALERS: dict[str, Scaler] = {"relative": minmax, "dbsf": dbsf, "rrf": reciprocal_rank}


def _select_scaler(method: str) -> Scaler:
    if method not in SCALERS:
        raise ValueError(f"unknown fusion {method!r}; valid: {', '.join(SCALERS)}")
    return SCALERS[method]


def weighted_sum(lists: Mapping[str, Ranked], weights: Mapping[str, float], scale: Scaler) -> dict[str, float]:
    """sum over lists of weight[name] * scale(list)[id]; lists without a weight are an error."""
    missing = set(lists) - set(weights)
    if missing:
        raise ValueError(f"no fusion weight for {sorted(missing)}")
    out: dict[str, float] = {}
    for name, hits in lists.items():
        w = weights[name]
        for i, s in scale(hits).items():
            out[i] = out.get(i, 0.0) + w * s
    return out


def fuse(lists: Mapping[str, Ranked], weights: Mapping[str, float], method: str = "relative") -> list[Fused]:
    """Fused ranking of named lists, best first (ties by id): each hit with its raw score per list."""
    scores = weighted_sum(lists, weights, _select_scaler(method))
    raw = {name: dict(hits) for name, hits in lists.items()}
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [Fused((i, scores[i], {n: r[i] for n, r in raw.items() if i in r})) for i in order]


def cross_language(hits: Ranked, translated: Ranked, other_language: set[str], k: int) -> Ranked:
    """Hits where each other-language passage keeps the better of its two scores.

    ``translated`` are the hits of the query's glossary translation; a passage in the query's own
    language keeps its original score, so the translation only lifts passages it speaks to.
    """
    best = dict(hits)
    for i, s in translated:
        if i in other_language and s > best.get(i, -1.0):
            best[i] = s
    return sorted(best.items(), key=lambda t: (-t[1], t[0]))[:k]
