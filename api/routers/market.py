"""The technology market (科技大市场): cited answers, need/result matching, the batch sheet."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from api.auth import ReadAccess
from api.deps import SearchDep, SettingsDep
from api.errors import COMMON_ERRORS, NotAcceptableError, error_responses
from api.routers.search import HAS_WORD
from kb.errors import BadInputError
from kb.index.pairs import PairStore
from kb.models import AskResponse, Match, MatchResponse
from kb.search.ask import TOP_CHUNKS, Asker
from kb.search.hybrid import Searcher
from kb.search.match import EXPORT_HEADERS, Filters, Matcher, Record, export_rows, write_table
from kb.search.match.pairing import statuses, suggest_all
from kb.search.match.suggest import suggest_open

router = APIRouter(tags=["market"], responses=COMMON_ERRORS)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
JSON = "application/json"


class AskRequest(BaseModel):
    question: str = Field(..., min_length=1, max_length=2000, json_schema_extra={"pattern": HAS_WORD})
    top_k: int = Field(TOP_CHUNKS, ge=1, le=50, description="passages searched for answer sentences")

    model_config = {"json_schema_extra": {"examples": [
        {"question": "排采过程中如何控制井底流压"}, {"question": "沁水县煤层气利用率的目标是多少？"}]}}


class MatchFilters(BaseModel):
    top_k: int = Field(5, ge=1, le=100)
    min_trl: int | None = Field(None, ge=1, le=9, description="only candidates with TRL at least this")
    field: str | None = Field(None, max_length=100, description="only this field, e.g. 储运液化",
                              json_schema_extra={"pattern": r"\S"})  # blank is refused: 400
    region: str | None = Field(None, max_length=100, description="region contains, e.g. 沁水",
                              json_schema_extra={"pattern": r"\S"})  # blank is refused: 400

    def filters(self) -> Filters:
        return Filters(min_trl=self.min_trl, field=self.field, region=self.region)


_MODES = ("need_id", "result_id", "expert_id", "text")
# exactly one of the three is a string; the others absent or null (Matcher.match answers 400 otherwise)
_ONE_OF: Any = [{"required": [m], "properties": {o: {"type": "string" if o == m else "null"} for o in _MODES}}
           for m in _MODES]


Target = Literal["result", "expert", "all"]


class MatchRequest(MatchFilters):
    to: Target = Field("result", description="for a need or text: match against results, experts and teams, or both")
    need_id: str | None = Field(None, max_length=200, description="match this need against the results")
    result_id: str | None = Field(None, max_length=200, description="match this result against the needs")
    expert_id: str | None = Field(None, max_length=200, description="match this expert or team against the needs")
    text: str | None = Field(None, max_length=4000, description="an engineer's own description of a problem",
                             json_schema_extra={"pattern": HAS_WORD})

    model_config = {"json_schema_extra": {"oneOf": _ONE_OF, "examples": [
        {"need_id": "N101", "top_k": 5},
        {"text": "集输管线穿过采空区，希望实时发现第三方挖掘和泄漏并给出桩号", "top_k": 5, "min_trl": 5},
        {"result_id": "R101", "top_k": 3, "region": "沁水"}, {"need_id": "N012", "to": "all", "top_k": 5}]}}

    def mode(self) -> tuple[str, str]:
        """(need | result | expert | text, the value): exactly one is given, else 400."""
        given = [(m[:-3] if m.endswith("_id") else m, v) for m in _MODES if (v := getattr(self, m)) is not None]
        if len(given) != 1:
            raise BadInputError("give exactly one of need_id, result_id, expert_id or text")
        return given[0]


class BatchRequest(MatchFilters):
    need_ids: list[str] | None = Field(None, max_length=1000, description="these needs only; default every need")
    to: Target = Field("result", description="results, experts and teams, or both")


class NeedMatches(BaseModel):
    need_id: str
    title: str
    matches: list[Match]


class BatchResponse(BaseModel):
    needs: int
    results: list[NeedMatches]


@router.post("/ask", response_model=AskResponse, summary="智能问答（带引用）", responses=error_responses(400, 409, 504))
async def ask(body: AskRequest, worker: SearchDep, settings: SettingsDep, caller: ReadAccess) -> AskResponse:
    """An answer built from the best sentences of the top passages; each [n] cites a passage."""
    budget = settings.search_timeout_s + (settings.llm_timeout if settings.llm_base_url else 0.0)
    return await worker.run(lambda s: Asker(s.settings, s).ask(body.question, top_k=body.top_k), timeout=budget,
                            visible=caller.visible)


def _match(s: Searcher, body: MatchRequest) -> MatchResponse:
    mode, value = body.mode()
    return suggest_open(Matcher(s.settings, s), mode=mode, value=value, to=body.to, top_k=body.top_k,
                        filters=body.filters())


@router.post("/match", response_model=MatchResponse, summary="供需匹配（需求↔成果/专家团队，附理由）",
             responses=error_responses(400, 404, 409, 504))
async def match(body: MatchRequest, worker: SearchDep, caller: ReadAccess) -> MatchResponse:
    """Give exactly one of need_id, result_id, expert_id or text; each match carries readable reasons.
    Pairs marked 不合适 (POST /pairs) are not suggested again for that need."""
    return await worker.run(lambda s: _match(s, body), visible=caller.visible)


Batch = tuple[list[tuple[Record, list[Match]]], dict[tuple[str, str], tuple[str, str]]]


def _batch(s: Searcher, body: BatchRequest) -> Batch:
    with PairStore(s.settings.market_path) as store:
        pairs = suggest_all(Matcher(s.settings, s), store, top_k=body.top_k, filters=body.filters(),
                            need_ids=body.need_ids, to=body.to)
        return pairs, statuses(store)


def _wanted(accept: str | None) -> str:
    """JSON, XLSX or CSV from the Accept header (JSON when it allows anything)."""
    types = [part.split(";")[0].strip().lower() for part in (accept or "*/*").split(",")]
    for t in types:
        if t in (XLSX, "application/vnd.ms-excel"):
            return XLSX
        if t == CSV:
            return CSV
        if t in (JSON, "application/*", "*/*"):
            return JSON
    raise NotAcceptableError(f"Accept must allow {JSON}, {XLSX} or {CSV}")


def _sheet(rows: list[list[object]], media: str) -> Response:
    suffix = ".xlsx" if media == XLSX else ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"match{suffix}"
        write_table(path, rows)  # type: ignore[arg-type]
        data = path.read_bytes()
    name = quote(f"需求成果匹配{suffix}")
    disposition = f"attachment; filename=\"match{suffix}\"; filename*=UTF-8''{name}"
    return Response(data, media_type=media + ("; charset=utf-8" if media == CSV else ""),
                    headers={"Content-Disposition": disposition})


@router.post("/match/batch", summary="批量供需匹配（JSON / Excel / CSV）",
             response_model=BatchResponse,
             responses={200: {"content": {XLSX: {}, CSV: {}},
                              "description": f"JSON, or a sheet with columns {'、'.join(EXPORT_HEADERS)}"},
                        **error_responses(400, 404, 406, 409, 504)})
async def match_batch(body: BatchRequest, worker: SearchDep, settings: SettingsDep, caller: ReadAccess,
                      accept: Annotated[str | None, Header()] = None) -> Response | BatchResponse:
    """Every need (or ``need_ids``) with its top results; ``Accept`` picks JSON, XLSX or CSV."""
    media = _wanted(accept)
    body.filters().check()  # a blank filter is a 400 even when no need is asked for (need_ids: [])
    pairs, marks = await worker.run(lambda s: _batch(s, body), timeout=settings.batch_timeout_s, visible=caller.visible)
    if not caller.allowed("bureau"):  # pair statuses and notes are the bureau's
        marks = {}
    if media != JSON:
        return _sheet(export_rows(pairs, marks), media)
    return BatchResponse(needs=len(pairs), results=[NeedMatches(need_id=n.doc_id, title=n.title, matches=m)
                                                   for n, m in pairs])
