"""Documents: upload (ingested by a background job), list, show, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api import catalog, uploads
from api.auth import ReadAccess, WriteAccess
from api.deps import JobsDep, SettingsDep
from api.errors import COMMON_ERRORS, error_responses
from kb.errors import UnsupportedFileError
from kb.models import KINDS

router = APIRouter(prefix="/documents", tags=["documents"], responses=COMMON_ERRORS)
Kind = Literal["document", "plan", "paper", "project", "need", "result"]
assert set(KINDS) == set(Kind.__args__)  # type: ignore[attr-defined]


class Accepted(BaseModel):
    job_id: str


class Deleted(BaseModel):
    deleted: str
    chunks: int


@router.post("", status_code=202, response_model=Accepted, summary="上传文档（后台入库）",
             responses=error_responses(400, 403, 415))
def upload(
    settings: SettingsDep, jobs: JobsDep, _: WriteAccess,
    files: Annotated[list[UploadFile], File(description="txt md docx pdf csv xlsx jsonl; one or more",
                                            json_schema_extra={"minItems": 1})],  # none is a 422
    kind: Annotated[Kind | None, Form(description="kind of every document; default from the file",
                                              json_schema_extra={"anyOf": [{"type": "string", "enum": list(KINDS)}]})] = None,
) -> Accepted:
    """Store the files under server-made names and ingest them in the background; poll GET /jobs/{job_id}."""
    stored, rejected = uploads.save(files, settings.uploads_dir)
    if not stored:
        raise UnsupportedFileError("; ".join(f.error for f in rejected) or "no files")
    return Accepted(job_id=jobs.submit(stored, kind, rejected).job_id)


@router.get("", response_model=catalog.DocumentPage, summary="文档列表（分页）", responses=error_responses(400))
async def list_documents(
    settings: SettingsDep, _: ReadAccess,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page")] = None,
    kind: Kind | None = None,
) -> catalog.DocumentPage:
    """Documents ordered by id; follow ``next_cursor`` until it is null."""
    return await run_in_threadpool(catalog.page, settings, limit=limit, cursor=cursor, kind=kind)


@router.get("/{doc_id:path}", response_model=catalog.DocumentDetail, summary="文档详情", responses=error_responses(404))
async def get_document(
    doc_id: str, settings: SettingsDep, _: ReadAccess,
    chunk: Annotated[str | None, Query(max_length=200, description="a search hit's id: its position is `focus`")] = None,
    q: Annotated[str | None, Query(max_length=2000, description="query whose terms are marked in `highlighted`")] = None,
) -> catalog.DocumentDetail:
    """One document with all its passages in order (the page's document view)."""
    return await run_in_threadpool(lambda: catalog.detail(settings, doc_id, chunk=chunk, query=q))


@router.delete("/{doc_id:path}", response_model=Deleted, summary="删除文档", responses=error_responses(403, 404, 409))
async def delete_document(doc_id: str, jobs: JobsDep, _: WriteAccess) -> Deleted:
    """Remove a document and its passages from every index (409 while a long ingest holds the index)."""
    n = await run_in_threadpool(jobs.delete_document, doc_id)
    return Deleted(deleted=doc_id, chunks=n)
