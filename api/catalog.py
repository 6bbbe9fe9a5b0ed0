"""Read-only views of the manifest for the API: document pages, one document, counts."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from api.uploads import original_name
from kb.errors import BadInputError, NotFoundError
from kb.index.manifest import Manifest
from kb.models import Stats
from kb.settings import Settings


class DocumentInfo(BaseModel):
    doc_id: str
    kind: str
    title: str
    source: str = Field(description="file name (the client's name for uploads)")
    uploaded: bool = False
    chunks: int
    meta: dict[str, Any] = Field(default_factory=dict)
    indexed_at: float
    duplicate_of: str | None = Field(None, description="possible duplicate of this earlier document (可能重复)")


class ChunkInfo(BaseModel):
    id: str
    section: str
    page: int | None
    text: str


class DocumentDetail(DocumentInfo):
    passages: list[ChunkInfo]


class DocumentPage(BaseModel):
    items: list[DocumentInfo]
    total: int
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


def _encode(doc_id: str) -> str:
    return base64.urlsafe_b64encode(doc_id.encode("utf-8")).decode("ascii").rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadInputError("invalid cursor; use next_cursor from the previous page") from None


def _info(row: dict[str, Any]) -> DocumentInfo:
    upload = original_name(row["source"])
    return DocumentInfo(doc_id=row["doc_id"], kind=row["kind"], title=row["title"],
                        source=upload or Path(row["source"]).name, uploaded=upload is not None,
                        chunks=row["n_chunks"], meta=row["meta"], indexed_at=row["at"],
                        duplicate_of=row.get("duplicate_of"))


def page(settings: Settings, *, limit: int, cursor: str | None, kind: str | None) -> DocumentPage:
    """Documents ordered by id, ``limit`` at a time after the cursor (keyset paging)."""
    after = _decode(cursor) if cursor else ""
    m = Manifest(settings.manifest_path)
    try:
        total, rows = m.page_documents(kind, after, limit + 1)
    finally:
        m.close()
    more = len(rows) > limit
    items = [_info(r) for r in rows[:limit]]
    return DocumentPage(items=items, total=total, next_cursor=_encode(items[-1].doc_id) if more else None)


def detail(settings: Settings, doc_id: str) -> DocumentDetail:
    """One document with its passages in order."""
    m = Manifest(settings.manifest_path)
    try:
        row = m.document(doc_id)
        if row is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        ids = m.chunk_ids(doc_id)
        rows = m.chunk_rows(ids)
    finally:
        m.close()
    passages = [ChunkInfo(id=i, section=rows[i]["section"], page=rows[i]["page"], text=rows[i]["text"])
                for i in ids if i in rows]
    return DocumentDetail(**_info(row).model_dump(), passages=passages)


def stats(settings: Settings) -> Stats:
    """The ``kb stats --json`` shape."""
    m = Manifest(settings.manifest_path)
    try:
        return m.stats()
    finally:
        m.close()
