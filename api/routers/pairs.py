"""The bureau's market work: match records (对接记录), new arrivals and unmet needs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from api.auth import BureauAccess, ReadAccess
from api.deps import SearchDep, SettingsDep
from api.errors import COMMON_ERRORS, NotAcceptableError, error_responses
from kb.index.pairs import PairStore
from kb.search.hybrid import Searcher
from kb.search.match import Matcher
from kb.search.match.alerts import NewArrivals, new_arrivals
from kb.search.match.pairing import record_pair, summary
from kb.search.match.unmet import UnmetNeeds, unmet_needs, write_unmet

router = APIRouter(tags=["market"], responses=COMMON_ERRORS)

Status = Literal["推荐", "已联系", "洽谈中", "已签约", "不合适"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PairRequest(BaseModel):
    need_id: str = Field(..., min_length=1, max_length=200)
    cand_id: str = Field(..., min_length=1, max_length=200, description="a result's or an expert's id")
    status: Status = Field(..., description="推荐 → 已联系 → 洽谈中 → 已签约, or 不合适 (not suggested again)")
    note: str = Field("", max_length=2000)

    model_config = {"json_schema_extra": {"examples": [
        {"need_id": "N105", "cand_id": "R108", "status": "已联系", "note": "已电话联系成果单位，约下周座谈"}]}}


class Change(BaseModel):
    need_id: str
    cand_id: str
    status: str
    note: str
    at: float = Field(description="Unix time of the change")
    by: str = Field(description="the API key's name that made the change")


class Pair(Change):
    cand_kind: str
    history: list[Change] = Field(default_factory=list)


class PairList(BaseModel):
    pairs: list[Pair]


class PairSummary(BaseModel):
    pairs: int
    by_status: dict[str, int]
    by_field: dict[str, dict[str, int]] = Field(description="need's field -> status -> count")


@router.post("/pairs", response_model=Pair, summary="记录对接状态（需求↔成果/专家团队）",
             responses=error_responses(400, 401, 404, 409))
async def set_pair(body: PairRequest, worker: SearchDep, caller: BureauAccess) -> Pair:
    """Set a pair's status with a note; the change is kept with its time and the API key's name."""
    def work(s: Searcher) -> dict[str, Any]:
        with PairStore(s.settings.market_path) as store:
            return record_pair(s.manifest, store, need_id=body.need_id, cand_id=body.cand_id, status=body.status,
                               note=body.note, by=caller.name)
    return Pair.model_validate(await worker.run(work, visible=caller.visible))


@router.get("/pairs", response_model=PairList, summary="对接记录列表", responses=error_responses(400, 401))
async def list_pairs(settings: SettingsDep, _: BureauAccess, need_id: Annotated[str | None, Query(max_length=200)] = None,
                     status: Status | None = None, history: bool = False) -> PairList:
    """Pairs (of one need, of one status), newest change first; ``history=true`` adds each pair's changes."""
    with PairStore(settings.market_path) as store:
        rows = store.pairs(need_id, status)
        out = [Pair.model_validate({**r, "history": store.history(r["need_id"], r["cand_id"]) if history else []})
               for r in rows]
    return PairList(pairs=out)


@router.get("/pairs/summary", response_model=PairSummary, summary="对接记录统计（按状态、领域）",
            responses=error_responses(401))
async def pairs_summary(worker: SearchDep, caller: BureauAccess) -> PairSummary:
    def work(s: Searcher) -> dict[str, Any]:
        with PairStore(s.settings.market_path) as store:
            return summary(s.manifest, store)
    return PairSummary.model_validate(await worker.run(work, visible=caller.visible))


@router.get("/match/new", response_model=NewArrivals, summary="新入库记录的强匹配（新成果服务的需求、新需求的候选）",
            responses=error_responses(400, 504))
async def match_new(worker: SearchDep, settings: SettingsDep, caller: ReadAccess,
                    since: Annotated[float, Query(ge=0, description="Unix time: records stored after it")]) -> NewArrivals:
    def work(s: Searcher) -> NewArrivals:
        with PairStore(s.settings.market_path) as store:
            return new_arrivals(Matcher(s.settings, s), store, since)
    return await worker.run(work, timeout=settings.batch_timeout_s, visible=caller.visible)


@router.get("/needs/unmet", response_model=UnmetNeeds, summary="未满足需求（按领域，JSON / Excel）",
            responses={200: {"content": {XLSX: {}}}, **error_responses(406, 504)})
async def needs_unmet(worker: SearchDep, settings: SettingsDep, caller: ReadAccess,
                      accept: Annotated[str | None, Header()] = None) -> Response | UnmetNeeds:
    """Open needs with no result or expert above the strong-match threshold, grouped by field."""
    wanted = [p.split(";")[0].strip().lower() for p in (accept or "*/*").split(",")]
    xlsx = XLSX in wanted
    if not xlsx and not any(t in ("application/json", "application/*", "*/*") for t in wanted):
        raise NotAcceptableError(f"Accept must allow application/json or {XLSX}")

    def work(s: Searcher) -> UnmetNeeds:
        with PairStore(s.settings.market_path) as store:
            return unmet_needs(Matcher(s.settings, s), store)
    res = await worker.run(work, timeout=settings.batch_timeout_s, visible=caller.visible)
    if not xlsx:
        return res
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "unmet.xlsx"
        write_unmet(path, res)
        data = path.read_bytes()
    disposition = f"attachment; filename=\"unmet.xlsx\"; filename*=UTF-8''{quote('未满足需求.xlsx')}"
    return Response(data, media_type=XLSX, headers={"Content-Disposition": disposition})
