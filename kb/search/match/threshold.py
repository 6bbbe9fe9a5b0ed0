"""Which match scores count as strong, and the plain rating an official reads (高/中/低).

One place for the threshold, so calibrated scores (the ranking work) replace it here and every user of it
(alerts, unmet needs, the rating on the card and the sheet) follows. Values measured on the labelled pairs
of eval/cbm with the bundled model (docs/MARKET.md, "Thresholds").
"""

from __future__ import annotations

from kb.search.match.scoring import match_calibration

# Match scores are calibrated probabilities that the candidate solves the need (kb/search/match/scoring.py,
# fitted by python -m eval.match_fit): a strong match is at least an even chance (the calibration's own level,
# which also decides Match.strong), 高 four chances in five. Before calibration these were 0.66 / 0.69 on the raw
# combined score, which meant different things on different sets (docs/MARKET.md, "Thresholds").
STRONG = match_calibration().strong
HIGH = 0.8
RATINGS = ("高", "中", "低")


def strong_enough(score: float, threshold: float | None = None) -> bool:
    """Whether a match score is above the threshold for a strong match (``threshold`` overrides it)."""
    return score >= (STRONG if threshold is None else threshold)


def rating(score: float) -> str:
    """高 / 中 / 低 from a match score."""
    return "高" if score >= HIGH else "中" if strong_enough(score) else "低"
