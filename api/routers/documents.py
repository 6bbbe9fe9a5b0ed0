"""Documents: upload (ingested by a background job), list, show, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api import catalog
from api.auth import ReadAccess, WriteAccess
from api.deps import JobsDep, SettingsDep
from api.errors import COMMON_ERRORS, error_responses
from kb.models import KINDS

router = APIRouter(prefix="/documents", tags=["documents"], responses=COMMON_ERRORS)
Kind = Literal["document", "plan", "paper", "project", "need", "result", "expert"]
assert set(KINDS) == set(Kind.__args__)  # type: ignore[attr-defined]


class Accepted(BaseModel):
    job_id: str


class Deleted(BaseModel):
    deleted: str = Field(description="the document's id")
    chunks: int = Field(description="passages removed (202: passages the job will remove)")
    job_id: str | None = Field(default=None, description="202 only: the background job deleting it; poll GET /jobs/{job_id}")


@router.post("", status_code=202, response_model=Accepted, summary="上传文档（后台入库）",
             responses=error_responses(400, 403, 415))
def upload(
    jobs: JobsDep, _: WriteAccess,
    files: Annotated[list[UploadFile], File(description="txt md docx pdf csv xlsx jsonl; one or more "
                                            "(at most KB_MAX_UPLOAD_FILES)",
                                            json_schema_extra={"minItems": 1})],  # none is a 422
    kind: Annotated[Kind | None, Form(description="kind of every document; default from the file",
                                              json_schema_extra={"anyOf": [{"type": "string", "enum": list(KINDS)}]})] = None,
    replace: Annotated[bool, Form(description="a record (table row, JSONL line) may replace a document of another "
                                              "source that has its id; each replacement is listed in the job's report")] = False,
) -> Accepted:
    """Store the files under server-made names and ingest them in the background; poll GET /jobs/{job_id}.

    A record whose id belongs to a document from another file is refused (listed in the job's ``failed``)
    unless ``replace`` is true.
    """
    return Accepted(job_id=jobs.accept(files, kind, replace).job_id)


@router.get("", response_model=catalog.DocumentPage, summary="文档列表（分页）", responses=error_responses(400))
async def list_documents(
    settings: SettingsDep, caller: ReadAccess,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page")] = None,
    kind: Kind | None = None,
) -> catalog.DocumentPage:
    """Documents ordered by id; follow ``next_cursor`` until it is null."""
    return await run_in_threadpool(catalog.page, settings, limit=limit, cursor=cursor, kind=kind,
                                   visible=caller.visible)


@router.get("/{doc_id:path}", response_model=catalog.DocumentDetail, summary="文档详情", responses=error_responses(404))
async def get_document(
    doc_id: str, settings: SettingsDep, caller: ReadAccess,
    chunk: Annotated[str | None, Query(max_length=200, description="a search hit's id: its position is `focus`")] = None,
    q: Annotated[str | None, Query(max_length=2000, description="query whose terms are marked in `highlighted`")] = None,
) -> catalog.DocumentDetail:
    """One document with all its passages in order (the page's document view)."""
    return await run_in_threadpool(lambda: catalog.detail(settings, doc_id, visible=caller.visible, chunk=chunk, query=q))


@router.delete("/{doc_id:path}", response_model=Deleted, response_model_exclude_none=True, summary="删除文档",
               responses={202: {"model": Deleted, "description": "a large document: a background job deletes it"},
                          **error_responses(403, 404, 409)})
async def delete_document(doc_id: str, jobs: JobsDep, _: WriteAccess, response: Response) -> Deleted:
    """Remove a document and its passages from every index.

    200 when done; 202 with a ``job_id`` for a document of more than KB_DELETE_SYNC_CHUNKS passages, which a
    background job deletes (poll GET /jobs/{job_id}). 409 while a long ingest holds the index.
    """
    n, job_id = await run_in_threadpool(jobs.delete_document, doc_id)
    if job_id is not None:
        response.status_code = 202
    return Deleted(deleted=doc_id, chunks=n, job_id=job_id)
