"""The last folder sync (``kb sync``): what it added, changed and removed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.auth import ReadAccess
from api.deps import SettingsDep
from api.errors import COMMON_ERRORS, error_responses
from kb.errors import NotFoundError
from kb.ingest.sync import SyncSummary, last

router = APIRouter(tags=["documents"], responses=COMMON_ERRORS)


@router.get("/sync/last", response_model=SyncSummary, summary="最近一次文件夹同步", responses=error_responses(404))
async def last_sync(settings: SettingsDep, _: ReadAccess) -> SyncSummary:
    """The summary of the last ``kb sync`` under this KB_HOME (404 before the first one)."""
    summary = await run_in_threadpool(last, settings)
    if summary is None:
        raise NotFoundError("no folder sync has run under this KB_HOME yet (kb sync FOLDER)")
    return summary
