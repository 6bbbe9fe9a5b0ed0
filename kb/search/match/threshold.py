"""Which match scores count as strong, and the plain rating an official reads (高/中/低).

One place for the threshold, so calibrated scores (the ranking work) replace it here and every user of it
(alerts, unmet needs, the rating on the card and the sheet) follows. Values measured on the labelled pairs
of eval/cbm with the bundled model (docs/MARKET.md, "Thresholds").
"""

from __future__ import annotations

# Pooled over both labelled sets, 0.66 maximises TPR - FPR (relevant results in a need's top 10 above it: 96%,
# others: 15%); 0.69 keeps 59% of relevant and 0.6% of others. Left out in turn, the two sets pick 0.66 and
# 0.685: today's scores are not calibrated across sets, hence one place to swap in calibrated ones.
STRONG = 0.66  # at or above: a candidate worth an officer's call (alerts, unmet needs)
HIGH = 0.69  # at or above: 高
RATINGS = ("高", "中", "低")


def strong_enough(score: float, threshold: float | None = None) -> bool:
    """Whether a match score is above the threshold for a strong match (``threshold`` overrides it)."""
    return score >= (STRONG if threshold is None else threshold)


def rating(score: float) -> str:
    """高 / 中 / 低 from a match score."""
    return "高" if score >= HIGH else "中" if strong_enough(score) else "低"
