"""POST /search: the CLI's hybrid search, same request options and the same SearchResponse."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import ReadAccess
from api.deps import SearchDep
from kb.models import SearchResponse

router = APIRouter(tags=["search"])


class SearchRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=2000, description="问题或关键词，中文或英文")
    top_k: int = Field(10, ge=1, le=100)
    filters: dict[str, str | int] = Field(
        default_factory=dict, description="kind, source, section (heading-path prefix), year, field, doc_id")
    method: Literal["hybrid", "dense", "bm25"] = "hybrid"

    model_config = {"json_schema_extra": {"examples": [
        {"query": "排采过程中如何控制井底流压", "top_k": 5, "filters": {}},
        {"query": "低浓度瓦斯发电", "top_k": 5, "filters": {"kind": "paper"}},
        {"query": "煤层气产业发展目标", "top_k": 3, "filters": {"kind": "plan", "section": "第四章"}},
    ]}}


@router.post("/search", response_model=SearchResponse, summary="技术检索（混合检索：向量 + BM25）")
async def search(body: SearchRequest, worker: SearchDep, _: ReadAccess) -> SearchResponse:
    """Hybrid search; hits carry the heading path (``section``), page and ``<mark>`` highlights."""
    return await worker.run(lambda s: s.search(body.query, top_k=body.top_k, filters=dict(body.filters),
                                               method=body.method))
