"""Read-only views of the manifest for the API: document pages, one document, counts.

Each takes the caller's ``visible`` (api/auth.py ``Caller.visible``) and reads through a manifest scoped to it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from api.uploads import PREFIX, original_name
from kb.errors import BadInputError, NotFoundError
from kb.index.manifest import Manifest
from kb.models import SearchHit, Stats
from kb.search.highlight import mark
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
    id: str = Field(description="the chunk id: a search hit's `id` (and its `chunk_ids`) name these passages")
    section: str
    page: int | None
    text: str
    position: int = Field(0, description="0-based place of the passage in the document")
    highlighted: str = Field("", description="the text with the terms of ?q= in <mark>, HTML-escaped; empty without q")


class DocumentDetail(DocumentInfo):
    passages: list[ChunkInfo] = Field(description="every passage of the document, in order")
    focus: int | None = Field(None, description="position of the passage named by ?chunk= (a hit's id), else null")


class FacetValue(BaseModel):
    value: str
    count: int = Field(description="documents with this value")


class Facets(BaseModel):
    """Filter values present in the index, with document counts (a filter with no values is an empty list)."""

    kind: list[FacetValue]
    field: list[FacetValue]
    year: list[FacetValue]


class DocumentPage(BaseModel):
    items: list[DocumentInfo]
    total: int
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


@contextmanager
def _reading(settings: Settings, visible: frozenset[str]) -> Iterator[Manifest]:
    """The manifest as a caller allowed ``visible`` reads it, closed after."""
    m = Manifest(settings.manifest_path)
    try:
        yield m.scoped(visible)
    finally:
        m.close()


def _encode(doc_id: str) -> str:
    return base64.urlsafe_b64encode(doc_id.encode("utf-8")).decode("ascii").rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadInputError("invalid cursor; use next_cursor from the previous page") from None


def _info(row: dict[str, Any]) -> DocumentInfo:
    upload = original_name(row["source"])
    title = row["title"]
    if upload and title == Path(row["source"]).stem:  # a file without a title is named after the client's file
        title = Path(upload).stem
    return DocumentInfo(doc_id=row["doc_id"], kind=row["kind"], title=title,
                        source=upload or Path(row["source"]).name, uploaded=upload is not None,
                        chunks=row["n_chunks"], meta=row["meta"], indexed_at=row["at"],
                        duplicate_of=row.get("duplicate_of"))


def page(settings: Settings, *, limit: int, cursor: str | None, kind: str | None,
         visible: frozenset[str]) -> DocumentPage:
    """Documents ordered by id, ``limit`` at a time after the cursor (keyset paging)."""
    after = _decode(cursor) if cursor else ""
    with _reading(settings, visible) as m:
        total, rows = m.page_documents(kind, after, limit + 1)
    more = len(rows) > limit
    items = [_info(r) for r in rows[:limit]]
    return DocumentPage(items=items, total=total, next_cursor=_encode(items[-1].doc_id) if more else None)


def detail(settings: Settings, doc_id: str, *, visible: frozenset[str], chunk: str | None = None,
           query: str | None = None) -> DocumentDetail:
    """One document with all its passages in order; ``chunk`` (a hit's id) sets ``focus``, ``query`` highlights."""
    with _reading(settings, visible) as m:
        row = m.document(doc_id)
        if row is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        rows = m.document_chunks(doc_id)
    passages = [ChunkInfo(id=r["chunk_id"], section=r["section"], page=r["page"], text=r["text"], position=n,
                          highlighted=mark(r["text"], query) if query else "")
                for n, r in enumerate(rows)]
    focus = next((p.position for p in passages if p.id == chunk), None) if chunk else None
    return DocumentDetail(**_info(row).model_dump(), passages=passages, focus=focus)


def facets(settings: Settings, visible: frozenset[str]) -> Facets:
    """Kinds, fields and years of the published documents, with counts."""
    with _reading(settings, visible) as m:
        counts = {key: m.facet_counts(key) for key in ("kind", "field", "year")}
    return Facets(**{key: [FacetValue(value=v, count=n) for v, n in c.items()] for key, c in counts.items()})


def name_uploads(settings: Settings, hits: list[SearchHit]) -> None:
    """Hits of uploaded files named (source, and a title taken from the file name) by the client's file name."""
    for h in hits:
        name = display_source(settings, h.source)
        if name != h.source and h.title == Path(h.source).stem:
            h.title = Path(name).stem
        h.source = name


def display_source(settings: Settings, source: str) -> str:
    """The name a user knows a file by: the client's name of an upload (stored as up-<hash>.ext), else ``source``."""
    if not source.startswith(PREFIX):
        return source
    return original_name(str(settings.uploads_dir / source)) or source


def stats(settings: Settings, visible: frozenset[str]) -> Stats:
    """The ``kb stats --json`` shape."""
    with _reading(settings, visible) as m:
        return m.stats()
