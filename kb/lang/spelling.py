"""British and American spellings of the same English word (utilisation / utilization, vapour / vapor).

Our own because the only library lists (e.g. breame) are general-vocabulary and not packaged for offline use;
the suffix rules below cover the technical vocabulary of our papers, the table the irregular words.
"""

from __future__ import annotations

import re
from functools import lru_cache

# irregular pairs, British first
_PAIRS = """
aluminium aluminum | sulphur sulfur | sulphide sulfide | sulphate sulfate | programme program | programmes programs
vapour vapor | vapours vapors | colour color | behaviour behavior | labour labor | harbour harbor | odour odor
neighbouring neighboring | favourable favorable | metre meter | metres meters | litre liter | litres liters
centre center | centres centers | fibre fiber | fibres fibers | calibre caliber | defence defense | licence license
modelling modeling | modelled modeled | fuelled fueled | fuelling fueling | labelled labeled | labelling labeling
travelling traveling | signalling signaling | channelling channeling | levelling leveling | tunnelling tunneling
cancelled canceled | counselling counseling | catalogue catalog | analogue analog | grey gray | tyre tire
"""
# words ending in -ise/-ize that are spelled one way only
_FIXED = frozenset("""size sizes sized sizing prize prizes seize seized capsize citizen citizens advise advised
exercise exercised otherwise wise expertise enterprise enterprises precise concise promise promised premise
comprise comprises comprised compromise surprise supervise supervised revise revised devise devised franchise
merchandise noise raise raised rise risen arise praise poise cruise bruise paradise treatise likewise clockwise
disguise chastise incise excise despise""".split())
_ISE = re.compile(r"^([a-z]{3,})(is|iz)(e|es|ed|ing|ation|ations|er|ers)$")
_YSE = re.compile(r"^([a-z]{2,})(ys|yz)(e|es|ed|ing|er|ers)$")
_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in re.split(r"[|\n]", _PAIRS):
        if not pair.strip():
            continue
        uk, us = pair.split()
        out[uk], out[us] = us, uk
    return out


def other_spelling(word: str) -> str | None:
    """The word in the other spelling (lower-case), or None when it has only one."""
    w = word.lower()
    if w in _FIXED:
        return None
    if w in _table():
        return _table()[w]
    for rx, a, b in ((_ISE, "is", "iz"), (_YSE, "ys", "yz")):
        if m := rx.match(w):
            return m.group(1) + (b if m.group(2) == a else a) + m.group(3)
    return None


def respelled(text: str) -> str | None:
    """The text with every word that has another spelling swapped (keeping a capital), or None if none has."""
    changed = False

    def swap(m: re.Match[str]) -> str:
        nonlocal changed
        other = other_spelling(m.group(0))
        if other is None:
            return m.group(0)
        changed = True
        return other.capitalize() if m.group(0)[0].isupper() else other

    out = _WORD.sub(swap, text)
    return out if changed else None
