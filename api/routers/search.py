"""POST /search: the CLI's hybrid search, same request options and the same SearchResponse."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, Field, StrictStr

from api import catalog
from api.auth import ReadAccess
from api.deps import SearchDep, SettingsDep
from api.errors import COMMON_ERRORS, error_responses
from kb.models import KINDS, SearchResponse
from kb.search.filters import ALLOWED
from kb.search.methods import SearchMethod

router = APIRouter(tags=["search"], responses=COMMON_ERRORS)


# The schema states what kb.search.filters.validate accepts, so generated clients (and Schemathesis)
# know it; the request still arrives as a dict, so an unknown key gets validate's 400 naming the valid ones.
HAS_WORD = r"[^\W_]"  # clean_query refuses text without a letter, digit or CJK character
_TEXT_VALUE = {"type": "string", "pattern": r"^\s*[^\s$\u0000](?:[^$\u0000]{0,198}[^\s$\u0000])?\s*$"}
_NUMBER = {"type": "integer", "minimum": 0, "maximum": 10**9}
_FILTERS_SCHEMA: dict[str, Any] = {"additionalProperties": False, "properties": {
    **{k: {"anyOf": [_TEXT_VALUE, _NUMBER]} for k in ALLOWED},
    "kind": {"type": "string", "enum": list(KINDS)},
    "year": {"anyOf": [_NUMBER, {"type": "string", "pattern": r"^\s*[0-9]{1,200}\s*$"}]},
}}


def _not_bool(v: object) -> object:
    if isinstance(v, bool):  # pydantic would take true as 1
        raise ValueError("a filter value is a string or a number, not true/false")
    return v


# int, not StrictInt: JSON Schema counts 2023.0 as an integer
FilterValue = StrictStr | Annotated[int, Field(ge=0, le=10**9), BeforeValidator(_not_bool)]


class SearchRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=2000, description="问题或关键词，中文或英文",
                       json_schema_extra={"pattern": HAS_WORD})  # checked by clean_query: 400 bad_query
    top_k: int = Field(10, ge=1, le=100)
    filters: dict[str, FilterValue] = Field(
        default_factory=dict, description="kind, source, section (heading-path prefix), year, field, doc_id",
        json_schema_extra=_FILTERS_SCHEMA)
    method: SearchMethod = "hybrid"

    model_config = {"json_schema_extra": {"examples": [
        {"query": "排采过程中如何控制井底流压", "top_k": 5, "filters": {}},
        {"query": "低浓度瓦斯发电", "top_k": 5, "filters": {"kind": "paper"}},
        {"query": "煤层气产业发展目标", "top_k": 3, "filters": {"kind": "plan", "section": "第四章"}},
    ]}}


@router.post("/search", response_model=SearchResponse, summary="技术检索（混合检索：向量 + BM25）",
             responses=error_responses(400, 409, 504))
async def search(body: SearchRequest, worker: SearchDep, settings: SettingsDep, caller: ReadAccess) -> SearchResponse:
    """Hybrid search; hits carry the heading path (``section``), page and ``<mark>`` highlights.

    An uploaded file's hits name it by the client's file name (the document list does too), not the stored one.
    """
    res = await worker.run(lambda s: s.search(body.query, top_k=body.top_k, filters=dict(body.filters),
                                              method=body.method), visible=caller.visible)
    catalog.name_uploads(settings, res.hits)
    return res
