"""What one file or one job may do to the index: passage limits, a time limit, and whose record ids are whose.

Each limit is a setting (KB_MAX_FILE_CHUNKS, KB_MAX_JOB_CHUNKS, KB_JOB_TIMEOUT_S); a file past one fails
alone with a message that names the limit, and the rest of the job goes on. A 52 MB text file made
173,334 passages (a 256 s job, 5.4 GB, and that one document held the top 10 of every query): it is
now refused from its size, before it is decoded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from kb.errors import KBError
from kb.index.manifest import Manifest
from kb.ingest.readers.text import TEXT_EXT
from kb.models import Document, FailedItem, Replacement
from kb.settings import Settings

_MAX_BYTES_PER_CHAR = 4  # UTF-8, GB18030 and UTF-16 all spend at most 4 bytes on a character


class LimitError(KBError):
    """A file or a job is past one of the limits on work (the message names the setting)."""

    code = "limit_exceeded"
    status = 413


@dataclass
class JobLimits:
    """The budget of one job: passages it may add and when it must stop starting files (None = no limit)."""

    max_chunks: int | None = None
    deadline: float | None = None  # time.monotonic()
    used: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> JobLimits:
        return cls(settings.max_job_chunks, time.monotonic() + settings.job_timeout_s)

    def check_time(self, name: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise LimitError(f"{name}: not read, the job ran past its time limit (KB_JOB_TIMEOUT_S); upload it again")

    def take(self, name: str, chunks: int) -> None:
        """Count a file's passages against the job, or refuse the file if they would pass the job's limit."""
        if self.max_chunks is not None and self.used + chunks > self.max_chunks:
            raise LimitError(f"{name}: {chunks} passages would take the job past {self.max_chunks} "
                             f"(KB_MAX_JOB_CHUNKS, {self.used} used); upload it in another job")
        self.used += chunks


def _too_many(name: str, what: str, settings: Settings) -> LimitError:
    return LimitError(f"{name}: {what}, more than KB_MAX_FILE_CHUNKS={settings.max_file_chunks} passages of "
                      f"KB_CHUNK_SIZE={settings.chunk_size} characters; split the file or raise the limit")


def before_reading(path: Path, size: int, settings: Settings) -> None:
    """Refuse plain text whose size alone makes too many passages, before decoding it (90 s for 50 MB)."""
    if path.suffix.lower() in TEXT_EXT and size > _MAX_BYTES_PER_CHAR * settings.chunk_size * settings.max_file_chunks:
        shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size:,} bytes"
        raise _too_many(path.name, f"{shown} of text", settings)


def before_chunking(name: str, docs: list[Document], settings: Settings) -> None:
    """Refuse a file whose text is clearly too long (twice the limit) without cutting it into passages."""
    chars = sum(len(s.text) for d in docs for s in d.sections)
    if chars > 2 * settings.chunk_size * settings.max_file_chunks:
        raise _too_many(name, f"{chars:,} characters", settings)


def after_chunking(name: str, chunks: int, settings: Settings) -> None:
    if chunks > settings.max_file_chunks:
        raise _too_many(name, f"{chunks:,} passages", settings)


def claim(manifest: Manifest, doc: Document, source_key: str, pending: dict[str, str], *, replace: bool,
          label: str) -> Replacement | FailedItem | None:
    """May ``doc`` be written? A record id belongs to the source that indexed it first; another source takes
    it only with ``replace``. None: no other source holds the id; a Replacement: it may, replacing that
    document; a FailedItem: refused. ``pending``: doc id -> source key of the documents waiting in this
    write batch; ``label``: the file as the report names it."""
    owner = pending.get(doc.doc_id) or manifest.doc_source(doc.doc_id)
    if owner is None or owner == source_key:
        return None
    row = manifest.document(doc.doc_id) or {"title": doc.doc_id, "kind": "?"}
    if replace:
        return Replacement(doc_id=doc.doc_id, title=str(row["title"]), kind=str(row["kind"]),
                           source=Path(owner).name, by=Path(source_key).name)
    other = f"document {doc.doc_id!r} ({row['kind']} «{row['title']}» from {Path(owner).name})"
    return FailedItem(path=label, error=f"{Path(label).name}: id {doc.doc_id!r} already belongs to {other}; "
                                        "ingest with --replace (API: replace=true) to replace it")
