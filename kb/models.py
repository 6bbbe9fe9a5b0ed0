"""Shapes shared by the write path, the read path, the CLI and the API."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

KINDS = ("document", "plan", "paper", "project", "need", "result", "expert")
# record metadata key kept out of indexed text, of documents.meta and of every search/ask/match response
# (the manifest keeps it in its own table; only the record endpoint may show it to a caller allowed to see it)
CONTACT_KEY = "contact"
# kinds of documents that are a whole file (named after it), as opposed to one row of a table
FILE_KINDS = ("document", "plan", "paper")

# Who may see a document: ``internal`` records (an enterprise's unsolved problem is a trade secret) only reach
# callers whose role allows them (api/auth.py); everything is public unless its record says otherwise.
VISIBILITIES = ("public", "internal")
PUBLIC_ONLY: frozenset[str] = frozenset({"public"})
EVERYTHING: frozenset[str] = frozenset(VISIBILITIES)
VISIBILITY_WORDS = {"public": "public", "公开": "public", "internal": "internal", "内部": "internal"}
# API key roles, each allowed what the one before is and more: reader (public records), bureau (internal records,
# contacts, pair statuses too), admin (writes and deletes too)
ROLES = ("reader", "bureau", "admin")


def visibility_of(meta: dict[str, Any]) -> str:
    """A document's visibility from its metadata: public when unset, internal for any value we do not know
    (fail closed: a misspelt marker must not publish a confidential record)."""
    value = meta.get("visibility")
    if value in (None, ""):
        return "public"
    return VISIBILITY_WORDS.get(str(value).strip().lower(), "internal")


def visible_to(role: str) -> frozenset[str]:
    """The visibilities a role may read; an unknown role reads public documents only."""
    return EVERYTHING if role in ("bureau", "admin") else PUBLIC_ONLY


def content_hash(*parts: str) -> str:
    """Stable short hash of text parts (ids and change detection)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path (and page, for PDFs).

    ``ocr``: the text was recognised from the page image. ``lookup``: a table row that carries almost no
    words (ids, dates, measurements): indexed for exact lookup, never a free-text answer (kb/ingest/chunk.py).
    """

    text: str
    path: tuple[str, ...] = ()
    page: int | None = None
    ocr: bool = False
    lookup: bool = False


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    ord: int
    text: str
    embed_text: str
    section: str
    page: int | None
    ocr: bool = False
    lookup: bool = False


@dataclass
class Document:
    """One logical document: a plan, a paper, one project row or one need/result record."""

    doc_id: str
    kind: str
    title: str
    source: str
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        body = "\n".join(f"{'>'.join(s.path)}|{s.page}|{_flags(s)}{s.text}" for s in self.sections)
        return content_hash(self.kind, self.title, repr(sorted(self.meta.items())), body)


def _flags(s: Section) -> str:
    """Flags in a fingerprint only when set: documents without them keep the fingerprints they had."""
    return ("ocr|" if s.ocr else "") + ("lookup|" if s.lookup else "")


class FailedItem(BaseModel):
    path: str
    error: str


class Replacement(BaseModel):
    """A document another source had indexed under the same id, replaced on request (``--replace``)."""

    doc_id: str
    title: str
    kind: str
    source: str = Field(description="file name of the document replaced")
    by: str = Field(description="file name of the record that replaced it")


class IngestReport(BaseModel):
    ingested: int = 0
    skipped: int = 0
    chunks: int = 0
    deleted: int = 0
    failed: list[FailedItem] = Field(default_factory=list)
    replaced: list[Replacement] = Field(default_factory=list)


class SearchHit(BaseModel):
    id: str
    doc_id: str
    score: float
    text: str
    title: str
    kind: str
    source: str
    section: str
    page: int | None
    highlighted: str = ""
    dense_score: float | None = None
    bm25_score: float | None = None
    chunk_ids: list[str] = Field(default_factory=list)  # the chunks this hit's passage covers, in order
    ocr: bool = False  # the passage was recognised from a page image
    duplicate_of: str | None = None  # its document is a possible duplicate of this one (kb/ingest/duplicates.py)


class SearchResponse(BaseModel):
    query: str
    took_ms: float
    hits: list[SearchHit]
    found: bool = True  # false: nothing is likely relevant (the best hit was below KB_MIN_RELEVANCE)


class DuplicateLink(BaseModel):
    doc_id: str
    duplicate_of: str = Field(description="the earlier document this one possibly duplicates")
    similarity: float = Field(description="estimated share of shared text (MinHash Jaccard of character shingles)")


class Stats(BaseModel):
    documents: int
    chunks: int
    by_kind: dict[str, int] = Field(default_factory=dict)
    embed_model: str | None = None
    lexical: str | None = None
    ocr_chunks: int = 0
    duplicates: list[DuplicateLink] = Field(default_factory=list)


# ---- matching and question answering (kb.search.match, kb.search.ask) ----


class Reason(BaseModel):
    """One readable reason for a match; ``type`` is terms | field | trl | region | score, extra keys carry data."""

    model_config = {"extra": "allow"}

    type: str
    text: str


class MatchQuery(BaseModel):
    """What was matched: a need, a result or free text, and the hard filters applied."""

    mode: str  # need | result | text
    id: str | None = None
    title: str | None = None
    text: str
    target: str  # the kind of the matches: result | need
    top_k: int
    min_trl: int | None = None
    field: str | None = None
    region: str | None = None


class Match(BaseModel):
    doc_id: str
    title: str
    kind: str
    score: float
    reasons: list[Reason]
    text: str
    parts: dict[str, float] = Field(default_factory=dict)
    field: str | None = None
    trl: int | None = None
    region: str | None = None
    strong: bool = False  # score (estimated probability that it solves the need) reaches the strong-match level
    org: str | None = None  # the candidate's organisation (成果单位 / 需求单位 / 专家所在单位)
    source: str | None = None  # where the record says it comes from (a paper, a report, a standard)
    rating: str | None = None  # 高 | 中 | 低, from the score (kb/search/match/threshold.py)


class MatchResponse(BaseModel):
    query: MatchQuery
    matches: list[Match]
    strong_match: bool = False  # false: no candidate is a strong match ("no strong match" / 暂无把握较大的匹配)


class Citation(BaseModel):
    doc_id: str
    title: str
    section: str
    page: int | None
    text: str
    chunk_id: str | None = None  # the passage in GET /documents/{doc_id} (its ``id``)
    highlighted: str = ""  # the text with the question's words in <mark>, HTML-escaped


class AskResponse(BaseModel):
    question: str
    answer: str
    found: bool
    citations: list[Citation]
    warnings: list[str] = Field(default_factory=list)
    language: str = "zh"  # the question's language, which the answer and its messages are in: zh | en
    notes: list[str] = Field(default_factory=list)  # e.g. that the cited sources are in another language
