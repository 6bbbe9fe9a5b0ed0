"""Where a record is, on the administrative-division hierarchy (province > city > county), with the CBM basins
and blocks mapped onto it (kb/resources/places.tsv): 沁水县 lies in 晋城, the 沁水盆地 spans 晋城, 长治 and more.

Our own because records name places loosely ("山西沁水盆地（郑庄区块）", "沁南", "山西晋城"): no gazetteer
library knows coal basins and gas blocks.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

Place = tuple[str, str, list[str]]  # name, level, parents


@lru_cache(maxsize=1)
def _places() -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """(alias or name → name, name → level, name → parents)."""
    alias: dict[str, str] = {}
    level: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    text = resources.files("kb.resources").joinpath("places.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, lvl, up, *more = (line.split("\t") + [""])[:4]
        level[name], parents[name] = lvl, [p for p in up.split("|") if p]
        for a in [name, *(x for x in "|".join(more).split("|") if x)]:
            alias[a] = name
    return alias, level, parents


def mentioned(region: str) -> list[str]:
    """The places a region text names, longest names first and none inside a longer one found."""
    alias, _, _ = _places()
    found: list[str] = []
    taken: list[tuple[int, int]] = []
    for a in sorted(alias, key=len, reverse=True):
        start = region.find(a)
        if start < 0 or any(s <= start < e or s < start + len(a) <= e for s, e in taken):
            continue
        taken.append((start, start + len(a)))
        found.append(alias[a])
    return list(dict.fromkeys(found))


def cities(name: str) -> set[str]:
    """The cities a place lies in or spans (a province: none; a county or block: its city)."""
    _, level, parents = _places()
    if level.get(name) == "city":
        return {name}
    return {c for p in parents.get(name, []) for c in cities(p)}


def counties(name: str) -> set[str]:
    """The county a county or block lies in (empty for larger places)."""
    _, level, parents = _places()
    if level.get(name) == "county":
        return {name}
    if level.get(name) == "block":
        return {c for p in parents.get(name, []) for c in counties(p)}
    return set()


def basins(region: str) -> set[str]:
    """The basins a region text names, as families (沁水盆地南部 is of the 沁水盆地)."""
    _, level, _ = _places()
    return {p[: p.index("盆地") + 2] for p in mentioned(region) if level.get(p) == "basin" and "盆地" in p}


def same_city(a: str, b: str) -> bool | None:
    """Whether two region texts share a city (a basin counts for every city it spans), two different basins
    never (their geology differs where their cities touch); None when either names no city-level place, so the
    caller decides from the text."""
    ba, bb = basins(a), basins(b)
    if ba and bb and not ba & bb:
        return False
    ca = {c for p in mentioned(a) for c in cities(p)}
    cb = {c for p in mentioned(b) for c in cities(p)}
    if not ca or not cb:
        return None
    return bool(ca & cb)
