"""One hit per passage when near-duplicate documents (the same standard as PDF and TXT) both match."""

from __future__ import annotations

from kb.lang.text import fold
from kb.models import SearchHit

SAME_PASSAGE = 0.5  # Jaccard of character trigrams: two extractions of one passage, OCR noise and all


def _grams(text: str) -> set[str]:
    s = "".join(c for c in fold(text) if c.isalnum())
    return {s[i : i + 3] for i in range(max(1, len(s) - 2))}


def same_passage(a: str, b: str) -> bool:
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) >= SAME_PASSAGE * len(ga | gb)


def collapse_duplicates(hits: list[SearchHit]) -> list[SearchHit]:
    """Hits in order, without a later hit that repeats an earlier one's passage from a linked duplicate."""
    kept: list[SearchHit] = []
    for h in hits:
        twins = [k for k in kept if h.duplicate_of == k.doc_id or k.duplicate_of == h.doc_id
                 or (h.duplicate_of is not None and h.duplicate_of == k.duplicate_of)]
        if not any(same_passage(h.text, k.text) for k in twins):
            kept.append(h)
    return kept
