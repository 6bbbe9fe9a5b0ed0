"""GET /facets: the filter values present in the index (kinds, fields, years) with document counts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api import catalog
from api.auth import ReadAccess
from api.deps import SettingsDep
from api.errors import COMMON_ERRORS

router = APIRouter(tags=["search"], responses=COMMON_ERRORS)


@router.get("/facets", response_model=catalog.Facets, summary="筛选项（索引中实际存在的类型、领域、年份及文档数）")
async def facets(settings: SettingsDep, caller: ReadAccess) -> catalog.Facets:
    """Values for the search filters ``kind``, ``field`` and ``year``, each with how many documents have it."""
    return await run_in_threadpool(catalog.facets, settings, caller.visible)
