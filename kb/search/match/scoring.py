"""Match scoring (pure): semantic similarity, IDF-weighted shared terms, which terms are worth showing."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

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


def semantic(title_sim: float, desc_sim: float, problem_sim: float | None = None, w_problem: float = 0.0) -> float:
    """Weighted mean of the query's cosine with the title, the description and (for a result whose
    technologies the thesaurus knows) the closest plain-language problem those technologies solve."""
    if problem_sim is None or w_problem <= 0:
        return (W_TITLE * title_sim + W_DESC * desc_sim) / (W_TITLE + W_DESC)
    return (W_TITLE * title_sim + W_DESC * desc_sim + w_problem * problem_sim) / (W_TITLE + W_DESC + w_problem)


Z_CLIP = 10.0  # standard deviations: beyond this a candidate stands out; more says nothing new
SD_FLOOR = 1e-3  # similarity units: a pool whose other candidates all score alike is not infinitely sure


def standardised(raw: Sequence[float | None], skip_none: bool = False) -> list[float]:
    """Each score as standard deviations above the *other* candidates' mean (leave-one-out), clipped to
    +-Z_CLIP: cosines of one model sit in a narrow band (0.89-0.91 for every candidate of a need), so only a
    score's distance from the rest carries meaning, and leaving the candidate out keeps that distance
    independent of the pool's size (a plain z-score cannot pass sqrt(n - 1)). A missing score
    (``skip_none``) sits at the mean (0)."""
    known = [x for x in raw if x is not None]
    n = len(known)
    if n < 3:
        return [0.0] * len(raw)
    total, squares = sum(known), sum(x * x for x in known)
    out = []
    for x in raw:
        if x is None:
            out.append(0.0)
            continue
        mean = (total - x) / (n - 1)
        sd = math.sqrt(max((squares - x * x) / (n - 1) - mean * mean, 0.0))
        out.append(max(-Z_CLIP, min(Z_CLIP, (x - mean) / max(sd, SD_FLOOR))))
    return out


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


@dataclass
class Scored:
    """One candidate's parts, its raw combined score, and its place in the pool (set after the pool is scored)."""

    cand: Any  # Record (records.py imports this module's neighbours; kept loose to avoid a cycle)
    raw: float
    semantic: float
    title: float
    description: float
    problem: float | None
    terms: float
    adjust: float
    field_reason: Any
    z: float = 0.0
    lead: float = 0.0
    probability: float = 0.0


VIEWS = ("title", "description", "problem", "terms")


@dataclass(frozen=True)
class MatchCalibration:
    """A candidate's views (title, description, thesaurus problem and term similarity), each standardised
    against the pool, weigh into a ranking score s = sum w·z; P(it solves the need) = sigmoid(a·s + b·lead + c),
    lead being the best candidate's margin in s over the next (negative for the others). Fitted on
    labelled pairs by eval/match_fit.py; ``strong`` is the probability a strong match must reach."""

    weights: tuple[float, ...]
    a: float
    b: float
    c: float
    strong: float

    def rank_scores(self, pool: list[Scored]) -> list[float]:
        cols = [standardised([_view(x, v) for x in pool], skip_none=True) for v in VIEWS]
        return [sum(w * col[j] for w, col in zip(self.weights, cols, strict=True)) + pool[j].adjust
                for j in range(len(pool))]

    def probability(self, s: float, lead: float) -> float:
        x = self.a * s + self.b * lead + self.c
        return 1.0 / (1.0 + math.exp(-max(min(x, 60.0), -60.0)))


def _view(x: Scored, view: str) -> float | None:
    return {"title": x.title, "description": x.description, "problem": x.problem, "terms": x.terms}[view]


@lru_cache(maxsize=1)
def match_calibration() -> MatchCalibration:
    """The fitted matching calibration shipped with the package (kb/resources/match_calibration.json)."""
    data: dict[str, Any] = json.loads(resources.files("kb.resources").joinpath("match_calibration.json")
                                      .read_text(encoding="utf-8"))
    return MatchCalibration(tuple(float(w) for w in data["weights"]), float(data["a"]), float(data["b"]),
                            float(data["c"]), float(data["strong"]))
