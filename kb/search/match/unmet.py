"""Unmet needs: needs with no result or expert above the strong-match threshold, grouped by field.

The list the bureau turns into open calls for solutions (揭榜挂帅) and the scarce-talent catalogue.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from kb.index.pairs import PairStore
from kb.search.match.matcher import Matcher
from kb.search.match.sheet import write_sheet
from kb.search.match.suggest import suggest
from kb.search.match.threshold import STRONG, strong_enough

UNMET_HEADERS = ("领域", "需求编号", "需求名称", "需求单位", "地区", "要求TRL", "最接近的候选", "候选名称", "最高得分")
UNMET_WIDTHS = (14, 10, 40, 28, 16, 9, 12, 40, 10)
NO_FIELD = "（未标注领域）"


class UnmetNeed(BaseModel):
    doc_id: str
    title: str
    field: str
    org: str | None = None
    region: str | None = None
    trl: int | None = None
    best_id: str | None = None
    best_title: str | None = None
    best_score: float | None = None


class UnmetNeeds(BaseModel):
    threshold: float
    needs: int  # needs looked at (open ones: no signed pair)
    unmet: int
    by_field: dict[str, list[UnmetNeed]]


def unmet_needs(matcher: Matcher, store: PairStore) -> UnmetNeeds:
    """Open needs whose best candidate (results and experts, 不合适 pairs left out) is below the threshold."""
    closed = store.signed_needs()
    needs = {i: n for i, n in matcher.records("need").items() if i not in closed}
    groups: dict[str, list[UnmetNeed]] = {}
    for need in needs.values():
        best = suggest(matcher, mode="need", value=need.doc_id, to="all", top_k=1, skip=store.rejected(need.doc_id))
        top = best.matches[0] if best.matches else None
        if top is not None and strong_enough(top.score):
            continue
        field = need.get("field") or NO_FIELD
        groups.setdefault(field, []).append(UnmetNeed(
            doc_id=need.doc_id, title=need.title, field=field, org=need.get("org") or None,
            region=need.get("region") or None, trl=need.trl, best_id=top.doc_id if top else None,
            best_title=top.title if top else None, best_score=top.score if top else None))
    by_field = {f: groups[f] for f in sorted(groups, key=lambda f: (-len(groups[f]), f))}
    return UnmetNeeds(threshold=STRONG, needs=len(needs), unmet=sum(map(len, groups.values())), by_field=by_field)


def unmet_rows(res: UnmetNeeds) -> list[list[object]]:
    return [[u.field, u.doc_id, u.title, u.org or "", u.region or "", u.trl or "", u.best_id or "",
             u.best_title or "", u.best_score if u.best_score is not None else ""]
            for items in res.by_field.values() for u in items]


def write_unmet(path: Path, res: UnmetNeeds) -> None:
    """The unmet needs as a working sheet (.xlsx or .csv)."""
    write_sheet(path, "未满足需求", UNMET_HEADERS, unmet_rows(res), UNMET_WIDTHS)
