"""Liveness and index counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api import catalog
from api.auth import ReadAccess
from api.deps import SettingsDep
from api.errors import COMMON_ERRORS
from kb.models import EVERYTHING, Stats

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    documents: int
    chunks: int
    embed_model: str
    features: list[str] = Field(description="capabilities this server offers: search, ask, match")


@router.get("/health", response_model=Health, summary="服务状态（无需密钥）", responses={413: COMMON_ERRORS[413]})
async def health(request: Request, settings: SettingsDep) -> Health:
    """Up, with the index counts (every document, internal ones too: counts, never text) and the model in use."""
    st = await run_in_threadpool(catalog.stats, settings, EVERYTHING)
    return Health(status="ok", documents=st.documents, chunks=st.chunks,
                  embed_model=st.embed_model or settings.embed_model, features=request.app.state.features)


@router.get("/stats", response_model=Stats, summary="索引统计（同 kb stats --json）", responses=COMMON_ERRORS)
async def stats(settings: SettingsDep, caller: ReadAccess) -> Stats:
    """Documents and chunks in the index, by kind — the ``kb stats --json`` shape — that this caller may read."""
    return await run_in_threadpool(catalog.stats, settings, caller.visible)
