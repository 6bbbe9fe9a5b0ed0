"""The write path: files -> Documents -> chunks -> vectors (Chroma) + manifest (SQLite) + BM25.

Files are read one by one; their chunks are written in batches across files (``KB_WRITE_BATCH``
chunks): one embedding call, one Chroma upsert, then one manifest transaction naming them, then the
replaced vectors are deleted. Each Chroma call syncs to disk (~65 ms measured), so one call per file
spent as long in Chroma as in the model. The crash guarantees are kb/index/recovery.py's: vectors
before the manifest rows, BM25 swapped in before the generation is published.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import KBError, NotFoundError
from kb.index import bm25_files
from kb.index.indexes import Indexes, open_indexes, remove_document
from kb.index.lock import write_lock
from kb.index.recovery import rebuild_lexical, recover_if_interrupted
from kb.ingest import guards
from kb.ingest.chunk import chunk_document
from kb.ingest.duplicates import DuplicateFinder
from kb.ingest.files import expand, infer_kind
from kb.ingest.guards import JobLimits
from kb.ingest.readers import SUPPORTED, ReadContext, read_file
from kb.models import FILE_KINDS, KINDS, Chunk, Document, FailedItem, IngestReport, Replacement, content_hash
from kb.settings import Settings

__all__ = ["SUPPORTED", "delete", "ingest", "ingest_documents"]
# bump when reading or chunking changes, so unchanged files are read again (unchanged documents
# are still skipped by their fingerprint, so only what the new code reads differently is re-embedded)
PIPELINE_VERSION = "4"  # 3: archive readers (text repair, clauses, lookup rows); 4: English text chunked at sentence ends

Progress = Callable[[Iterable[Any]], Iterable[Any]]
Notify = Callable[[str], None]  # one line of progress inside a file (OCR pages)
log = logging.getLogger("kb.ingest")


def _doc_key(doc: Document, settings: Settings) -> str:
    """What decides a document's chunks: its content, the chunking settings and the pipeline version."""
    return content_hash(doc.fingerprint(), PIPELINE_VERSION, str(settings.chunk_size), str(settings.chunk_overlap))


def chunk_meta(doc: Document, section: str, page: int | None) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "kind": doc.kind, "title": doc.title, "source": doc.source,
            "section": section, "page": page, "field": doc.meta.get("field"), "year": doc.meta.get("year")}


@dataclass
class _Unit:
    """What one file (or one slice of prepared documents) adds to a write batch."""

    label: str  # the path, for the report
    source_key: str
    docs: list[tuple[Document, list[Chunk]]]  # documents to (re)index, with their chunks
    digest: str | None = None  # the file's hash, recorded at commit (None: not a file)
    gone: list[str] = field(default_factory=list)  # documents the file no longer holds
    removed: bool = False  # the file itself is gone: forget it too


class _Batch:
    """Files read but not written yet; ``flush`` writes them all with one embedding and one Chroma call."""

    def __init__(self, ix: Indexes, gen: int, report: IngestReport, notify: Notify | None = None) -> None:
        self.ix, self.gen, self.report, self.notify = ix, gen, report, notify
        self.units: list[_Unit] = []
        self.owners: dict[str, str] = {}  # doc id -> source key, of documents waiting in this batch
        self.changed = False
        self.limits = JobLimits()  # none unless the caller sets them (the API's jobs do)
        self.replace = False  # a record may take an id another source holds (kb ingest --replace)

    @property
    def chunks(self) -> int:
        return sum(len(cs) for u in self.units for _, cs in u.docs)

    def add(self, unit: _Unit) -> None:
        self.units.append(unit)
        self.owners.update((d.doc_id, unit.source_key) for d, _ in unit.docs)
        if self.chunks >= self.ix.settings.write_batch:
            self.flush()

    def flush(self) -> None:
        """Vectors first, then one manifest transaction, then the replaced vectors go; a failure fails every file here."""
        units, self.units, self.owners = self.units, [], {}
        if not units:
            return
        try:
            stale = self._write(units)
        except KBError as exc:
            self.report.failed += [FailedItem(path=u.label, error=exc.message) for u in units]
            return
        self.ix.drop_vectors(stale)
        for u in units:
            self.report.chunks += sum(len(cs) for _, cs in u.docs)
            self.report.ingested += len(u.docs)
            self.report.deleted += len(u.gone)
            self.changed |= bool(u.docs or u.gone)

    def _write(self, units: list[_Unit]) -> list[str]:
        ix = self.ix
        pairs = [(d, c) for u in units for d, cs in u.docs for c in cs]
        if pairs:
            vecs = ix.embedder.passages([c.embed_text for _, c in pairs])
            # vectors before the manifest rows: a committed document always has all its vectors
            ix.vectors.upsert([c.chunk_id for _, c in pairs], [c.text for _, c in pairs], vecs,
                              [chunk_meta(d, c.section, c.page) for d, c in pairs])
        stale: list[str] = []
        with ix.manifest:
            dups = DuplicateFinder(ix.manifest, ix.settings.near_duplicate)
            for u in units:
                for doc, cs in u.docs:
                    new = {c.chunk_id for c in cs}
                    stale += [i for i in remove_document(ix, doc.doc_id) if i not in new]
                    ix.manifest.put_document(doc, cs, u.source_key, _doc_key(doc, ix.settings), self.gen)
                    dups.add(doc)
                for gone in u.gone:
                    stale += remove_document(ix, gone)
                if u.digest is not None:
                    ix.manifest.set_file(u.source_key, u.digest)
                elif u.removed:
                    ix.manifest.forget_file(u.source_key)
            if any(u.docs or u.gone for u in units):
                ix.manifest.mark_written(self.gen)
        return stale


def _unique_doc_id(ix: Indexes, doc: Document, source_key: str, pending: dict[str, str]) -> None:
    """File documents are named after the file; a same-named file elsewhere gets a suffix."""
    owner = pending.get(doc.doc_id) or ix.manifest.doc_source(doc.doc_id)
    if owner is not None and owner != source_key and doc.kind in FILE_KINDS:
        doc.doc_id = f"{doc.doc_id}-{content_hash(source_key)[:6]}"


def _keep_kind(ix: Indexes, doc: Document, source_key: str) -> None:
    """Without --kind, a file document keeps the kind it was indexed with (changing it takes --kind)."""
    row = ix.manifest.doc_kind_and_source(doc.doc_id)
    if row is not None and row[1] == source_key and row[0] in FILE_KINDS:
        doc.kind = row[0]


def _read_unit(batch: _Batch, path: Path, kind: str | None) -> _Unit | None:
    """One file read and chunked, ready for the batch; None when it is unchanged since the last ingest."""
    ix, pending, report = batch.ix, batch.owners, batch.report
    key = str(path.resolve())
    data = path.read_bytes()
    chunking = f"{ix.settings.chunk_size}/{ix.settings.chunk_overlap}"
    digest = f"{hashlib.sha256(data).hexdigest()}:{kind or ''}:{PIPELINE_VERSION}:{chunking}"
    if ix.manifest.file_hash(key) == digest:
        report.skipped += len(ix.manifest.docs_from(key))
        return None
    guards.before_reading(path, len(data), ix.settings)
    ctx = ReadContext.from_settings(ix.settings, kind=kind, folder_kind=infer_kind(path))
    docs, row_errors = read_file(path, data, ctx, on_progress=_page_events(path, batch.notify))
    guards.before_chunking(path.name, docs, ix.settings)
    report.failed.extend(FailedItem(path=str(path), error=e) for e in row_errors)
    unit = _Unit(label=str(path), source_key=key, docs=[], digest=digest)
    replaced: list[Replacement] = []
    for doc in docs:
        _unique_doc_id(ix, doc, key, pending)
        if kind is None:
            _keep_kind(ix, doc, key)
        if ix.manifest.fingerprint(doc.doc_id) == _doc_key(doc, ix.settings):
            report.skipped += 1
        elif isinstance(verdict := guards.claim(ix.manifest, doc, key, pending, replace=batch.replace,
                                                label=str(path)), FailedItem):
            report.failed.append(verdict)
            unit.digest = None  # not "unchanged" next time: the same file with --replace must be read again
        else:
            replaced += [verdict] if verdict else []
            unit.docs.append((doc, chunk_document(doc, ix.settings.chunk_size, ix.settings.chunk_overlap)))
    guards.after_chunking(path.name, sum(len(cs) for _, cs in unit.docs), ix.settings)
    report.replaced += replaced
    unit.gone = sorted(set(ix.manifest.docs_from(key)) - {d.doc_id for d in docs})
    return unit


def _page_events(path: Path, notify: Notify | None) -> Callable[[dict[str, Any]], None]:
    """The reader's progress events (one per OCR page) as log lines, and to ``notify``."""

    def event(e: dict[str, Any]) -> None:
        if e.get("stage") == "ocr":
            line = f"{path.name}: OCR page {e['page']} ({e['n']}/{e['of']})"
            log.info(line)
            if notify is not None:
                notify(line)

    return event


def _add_file(batch: _Batch, path: Path, kind: str | None) -> None:
    """One file of a batch; its failure goes into the report, not up the stack."""
    try:
        if not path.exists():
            raise NotFoundError(f"{path}: no such file")
        batch.limits.check_time(path.name)
        unit = _read_unit(batch, path, kind)
        if unit is not None:
            batch.limits.take(path.name, sum(len(cs) for _, cs in unit.docs))
    except KBError as exc:
        batch.report.failed.append(FailedItem(path=str(path), error=exc.message))
        return
    except OSError as exc:
        batch.report.failed.append(FailedItem(path=str(path), error=f"{path.name}: cannot read ({exc.strerror})"))
        return
    if unit is not None:
        batch.add(unit)


@contextmanager
def _writing(settings: Settings, report: IngestReport, notify: Notify | None = None) -> Iterator[_Batch]:
    """A write batch under the writer lock, after crash recovery; on success it is flushed and published."""
    with write_lock(settings.home):
        ix = open_indexes(settings)
        try:
            recover_if_interrupted(ix)
            batch = _Batch(ix, ix.manifest.written_gen() + 1, report, notify)
            yield batch
            batch.flush()
            if batch.changed or bm25_files.state(settings.bm25_dir) is None:
                rebuild_lexical(ix, batch.gen)
        finally:
            ix.close()


def ingest(paths: Iterable[Path], settings: Settings, kind: str | None = None,
           progress: Progress | None = None, remove: Iterable[str] = (),
           notify: Notify | None = None, *, replace: bool = False, limits: JobLimits | None = None) -> IngestReport:
    """Ingest files and folders; bad files are reported in ``failed`` and the rest go in.

    ``remove``: sources (resolved file paths, as the manifest keys them) whose documents leave the
    index in the same write, one generation with the files (folder sync's deleted files).
    ``notify`` gets a line per step inside a file (each OCR'd page).
    ``replace``: a record may take an id that a document of another source holds (listed in ``replaced``);
    ``limits``: the job's passage and time budget. Takes the writer lock (WriterBusyError at once if
    another writer holds it).
    """
    if kind is not None and kind not in KINDS:
        raise KBError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    report = IngestReport()
    with _writing(settings, report, notify) as batch:
        batch.replace, batch.limits = replace, limits or JobLimits()
        for key in remove:
            batch.add(_Unit(label=key, source_key=key, docs=[], gone=batch.ix.manifest.docs_from(key), removed=True))
        batch.flush()  # removals first: a file moved inside a synced folder keeps its document id
        files = expand(paths)
        for path in progress(files) if progress else files:
            _add_file(batch, path, kind)
    return report


def ingest_documents(docs: list[Document], settings: Settings, source_key: str,
                     progress: Progress | None = None) -> IngestReport:
    """Index already-built Documents (e.g. an evaluation corpus.jsonl) under one source key."""
    report = IngestReport()
    with _writing(settings, report) as batch:
        for doc in progress(docs) if progress else docs:
            if batch.ix.manifest.fingerprint(doc.doc_id) == _doc_key(doc, settings):
                report.skipped += 1
                continue
            chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap)
            batch.add(_Unit(label=source_key, source_key=source_key, docs=[(doc, chunks)]))
    return report


def delete(doc_id: str, settings: Settings, progress: Progress | None = None) -> int:
    """Remove a document and its chunks from every index; returns the chunks removed.

    ``progress`` wraps the vector deletes, a thousand at a time (173k of them took a minute).
    """
    with write_lock(settings.home):
        ix = open_indexes(settings)
        try:
            recover_if_interrupted(ix)
            if ix.manifest.document(doc_id) is None:
                raise NotFoundError(f"no document with id {doc_id!r}")
            gen = ix.manifest.written_gen() + 1
            with ix.manifest:
                source = ix.manifest.doc_source(doc_id)
                ids = remove_document(ix, doc_id)
                if source:
                    ix.manifest.forget_file(source)  # so re-ingesting the file brings the document back
                ix.manifest.mark_written(gen)
            parts = [ids[i : i + 1000] for i in range(0, len(ids), 1000)]
            for part in progress(parts) if progress else parts:
                ix.drop_vectors(part)
            rebuild_lexical(ix, gen)
        finally:
            ix.close()
    return len(ids)


