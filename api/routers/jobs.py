"""Background job status."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import ReadAccess
from api.deps import JobsDep
from api.errors import COMMON_ERRORS, error_responses
from api.jobs import Job

router = APIRouter(tags=["documents"], responses=COMMON_ERRORS)


@router.get("/jobs/{job_id}", response_model=Job, summary="入库任务状态", responses=error_responses(404))
def get_job(job_id: str, jobs: JobsDep, _: ReadAccess) -> Job:
    """queued → running → done (or failed); ``failed`` lists files that could not be ingested."""
    return jobs.get(job_id)
