"""Calibrated fusion: each candidate's retriever scores -> an estimated probability that it is relevant.

A logistic model over a few features of each retriever's list (the raw score, where it sits in its
list, how far the list's best is above the rest) gives one number that means the same on every query:
a weak list contributes little, and a query whose best candidate is improbable can be told so.
The weights are data (kb/resources/fusion_calibration.json), fitted by eval/fusion_fit.py on the
public sets named in that file; this module only applies them (pure numpy, no fitting library).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from kb.search.fuse import Fused, Ranked

RESOURCE = "fusion_calibration.json"
_SD_FLOOR = 1e-3


def _side(prefix: str, hits: Ranked, ids: list[str], k: int) -> dict[str, np.ndarray]:
    """Features of one retriever's list for every candidate id (absent ones sit at the list's floor)."""
    n = len(ids)
    if not hits:
        zero = np.zeros(n)
        return {f"{prefix}_raw": zero, f"{prefix}_gap": zero, f"{prefix}_ratio": zero, f"{prefix}_z": zero,
                f"{prefix}_mm": zero, f"{prefix}_lrank": np.full(n, -math.log(k + 1)), f"{prefix}_in": zero,
                f"{prefix}_top": zero, f"{prefix}_spread": zero, f"{prefix}_drop10": zero}
    scores = np.array([s for _, s in hits], dtype=np.float64)
    pos = {i: r for r, (i, _) in enumerate(hits)}
    top, lo = float(scores.max()), float(scores.min())
    # a list shorter than asked holds every candidate with a score: the rest score 0 there
    floor = lo if len(hits) >= k else min(lo, 0.0)
    raw = np.array([scores[pos[i]] if i in pos else floor for i in ids])
    rank = np.array([pos[i] + 1 if i in pos else k + 1 for i in ids], dtype=np.float64)
    sd = max(float(scores.std()), _SD_FLOOR)
    span = top - lo
    return {
        f"{prefix}_raw": raw,
        f"{prefix}_gap": raw - top,
        f"{prefix}_ratio": raw / top if top > 0 else np.zeros(n),
        f"{prefix}_z": (raw - scores.mean()) / sd,
        f"{prefix}_mm": np.clip((raw - lo) / span, 0.0, 1.0) if span > 0 else np.ones(n),
        f"{prefix}_lrank": -np.log(rank),
        f"{prefix}_in": np.array([1.0 if i in pos else 0.0 for i in ids]),
        f"{prefix}_top": np.full(n, top),
        f"{prefix}_spread": np.full(n, (top - float(np.median(scores))) / sd),
        f"{prefix}_drop10": np.full(n, top - float(scores[min(9, len(scores) - 1)])),
    }


def features(lists: Mapping[str, Ranked], k: int, weights: Mapping[str, float] | None = None,
             signals: Mapping[str, float] | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """Candidate ids (the union of the lists, in first-seen order) and their feature columns by name.

    Prefixes: ``d`` for the dense list, ``b`` for BM25. ``rel`` is relative-score fusion (min-max of each
    list, weighted: ``weights``, default equal), ``both_top10`` the two lists' agreement in their top 10;
    ``signals`` are query-level numbers from the retrievers (``b_cov``: BM25Retriever.signals).
    """
    ids = list(dict.fromkeys(i for hits in lists.values() for i, _ in hits))
    cols: dict[str, np.ndarray] = {name: np.full(len(ids), float(v)) for name, v in (signals or {}).items()}
    for name, prefix in (("dense", "d"), ("bm25", "b")):
        if name in lists:
            cols.update(_side(prefix, lists[name], ids, k))
    if "dense" in lists and "bm25" in lists:
        w = weights or {"dense": 0.5, "bm25": 0.5}
        present = [cols["d_in"], cols["b_in"]]  # an absent candidate scores 0 in that list, as in fuse()
        cols["rel"] = (w["dense"] * cols["d_mm"] * present[0] + w["bm25"] * cols["b_mm"] * present[1]) / (
            w["dense"] + w["bm25"])
        tops = [{i for i, _ in lists[n][:10]} for n in ("dense", "bm25")]
        cols["both_top10"] = np.full(len(ids), len(tops[0] & tops[1]) / 10.0)
    return ids, cols


@dataclass(frozen=True)
class Model:
    """A logistic model: P(relevant) = sigmoid(bias + sum weight * feature)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def logits(self, cols: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0)  # a query without candidates has no columns either
        out = np.full(n, self.bias)
        for f, w in zip(self.features, self.weights, strict=True):
            out += w * cols[f]
        return out


@dataclass(frozen=True)
class Scorer:
    """score = P(the query has an answer in the index) x P(this candidate is relevant | it has one).

    ``relevant`` reads one per-candidate feature (the fused or the raw score, positive weight) beside
    features of the whole query, so it keeps that score's order within a query; ``answerable`` reads
    features of the whole query only (how close the best passage comes at all), so it scales a query's
    scores together and is what makes a nonsense query's best hit improbable.
    """

    relevant: Model
    answerable: Model

    def probabilities(self, cols: Mapping[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
        """(ranking logits, probabilities) of n candidates."""
        logit = self.relevant.logits(cols, n)
        p = _sigmoid(logit) * _sigmoid(self.answerable.logits(cols, n))
        return logit, p


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


@dataclass(frozen=True)
class Calibration:
    """Scorers per search method (``hybrid``, ``dense``, ``bm25``), each in a ``full`` form (raw dense
    cosines, valid for the embedding model it was fitted with) and a ``portable`` one (list-relative
    dense features only, for any other model)."""

    embed_model: str
    scorers: dict[str, dict[str, Scorer]]
    fitted_on: tuple[str, ...]

    def fits(self, retrievers: tuple[str, ...], embed_model: str | None) -> bool:
        """Whether the ``full`` form applies: no dense list, or dense cosines of the model it was fitted with
        (``None``: not known yet, taken as that model). Only then are scores absolute enough for a floor."""
        return "dense" not in retrievers or embed_model is None or embed_model.startswith(self.embed_model)

    def scorer(self, retrievers: tuple[str, ...], embed_model: str | None) -> Scorer:
        method = "hybrid" if len(retrievers) > 1 else retrievers[0]
        return self.scorers[method]["full" if self.fits(retrievers, embed_model) else "portable"]


def _model(m: dict[str, Any]) -> Model:
    return Model(tuple(m["features"]), tuple(float(w) for w in m["weights"]), float(m["bias"]))


def load_calibration(text: str) -> Calibration:
    data = json.loads(text)
    scorers = {method: {form: Scorer(_model(pair["relevant"]), _model(pair["answerable"])) for form, pair in forms.items()}
               for method, forms in data["models"].items()}
    return Calibration(data["embed_model"], scorers, tuple(data["fitted_on"]))


@lru_cache(maxsize=1)
def bundled() -> Calibration:
    """The calibration shipped with the package."""
    return load_calibration(resources.files("kb.resources").joinpath(RESOURCE).read_text(encoding="utf-8"))


def calibrated(lists: Mapping[str, Ranked], scorer: Scorer, k: int, weights: Mapping[str, float] | None = None,
               signals: Mapping[str, float] | None = None) -> list[Fused]:
    """Candidates ranked by their estimated probability of relevance (ties by id), each with its raw scores."""
    ids, cols = features(lists, k, weights, signals)
    if not ids:
        return []
    logit, p = scorer.probabilities(cols, len(ids))
    raw = {name: dict(hits) for name, hits in lists.items()}
    order = sorted(range(len(ids)), key=lambda j: (-logit[j], ids[j]))
    return [Fused((ids[j], float(p[j]), {n: r[ids[j]] for n, r in raw.items() if ids[j] in r})) for j in order]
