"""The write path: files -> Documents -> chunks -> vectors (Chroma) + manifest (SQLite) + BM25."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb import lexical
from kb.embed import Embedder, load_embedder
from kb.errors import ExtractionError, IndexMismatchError, KBError, NotFoundError, UnsupportedFileError
from kb.ingest.chunk import chunk_document
from kb.ingest.readers import TEXT_EXT, read_document
from kb.ingest.tables import TABLE_EXT, table_documents
from kb.manifest import Manifest
from kb.models import KINDS, Document, FailedItem, IngestReport, content_hash
from kb.settings import Settings
from kb.store import VectorStore, open_collection

SUPPORTED = TEXT_EXT | TABLE_EXT | {".docx", ".pdf"}
IGNORE_FILE = ".kbignore"
# bump when reading or chunking changes, so unchanged files are read again (unchanged documents
# are still skipped by their fingerprint, so only what the new code reads differently is re-embedded)
PIPELINE_VERSION = "2"
DEFAULT_IGNORE = ["README*"]  # a folder's README describes the folder; it is not content
_FOLDER_KINDS = {"plan": "plan", "papers": "paper", "paper": "paper", "projects": "project",
                 "needs": "need", "results": "result"}

Progress = Callable[[Iterable[Path]], Iterable[Path]]


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, plus files under directories (hidden files and .kbignore patterns skipped)."""
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        patterns = _ignore_patterns(p)
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p).as_posix()
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts) and not any(
                fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(f.name, pat) for pat in patterns
            ):
                out.append(f)
    return out


def _ignore_patterns(root: Path) -> list[str]:
    f = root / IGNORE_FILE
    if not f.exists():
        return list(DEFAULT_IGNORE)
    lines = (x.strip() for x in f.read_text(encoding="utf-8").splitlines())
    return DEFAULT_IGNORE + [x.rstrip("/") + ("*" if x.endswith("/") else "") for x in lines if x and not x.startswith("#")]


def infer_kind(path: Path) -> str | None:
    """The kind implied by the nearest corpus folder name (plan/, papers/, needs/ ...)."""
    for parent in path.resolve().parents:
        if parent.name in _FOLDER_KINDS:
            return _FOLDER_KINDS[parent.name]
    return None


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
            self._embedder = load_embedder(self.settings.embed_model, self.settings.embed_batch)
            self._check_model(self._embedder.name)
        return self._embedder

    def _check_model(self, name: str) -> None:
        built = self.manifest.get_meta("embed_model")
        if built and built != name and self.manifest.counts()[1] > 0:
            raise IndexMismatchError(
                f"the index under {self.settings.home} was built with {built}; KB_EMBED_MODEL is {name}. "
                "Use another KB_HOME or delete this one to re-index."
            )
        self.manifest.set_meta("embed_model", name)


def open_indexes(settings: Settings) -> Indexes:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Indexes(Manifest(settings.manifest_path), VectorStore(open_collection(settings.chroma_dir)), settings)


def _file_docs(path: Path, data: bytes, kind: str | None) -> tuple[list[Document], list[str]]:
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        raise UnsupportedFileError(f"{path.name}: unsupported file type {ext or '(none)'}; "
                                   f"supported: {', '.join(sorted(SUPPORTED))}")
    if ext in TABLE_EXT:
        return table_documents(path, data, kind, infer_kind(path))
    if not data.strip():
        raise ExtractionError(f"{path.name}: empty file")
    doc_kind = kind or infer_kind(path) or ("paper" if ext == ".pdf" else "plan")
    return [read_document(path, data, doc_kind, path.stem)], []


def _remove(ix: Indexes, doc_id: str) -> None:
    ix.vectors.delete(ix.manifest.chunk_ids(doc_id))
    ix.manifest.delete_document(doc_id)


def _unique_doc_id(ix: Indexes, doc: Document, source_key: str) -> None:
    """File documents are named after the file; a same-named file elsewhere gets a suffix."""
    owner = ix.manifest.doc_source(doc.doc_id)
    if owner is not None and owner != source_key and doc.kind in ("plan", "paper"):
        doc.doc_id = f"{doc.doc_id}-{content_hash(source_key)[:6]}"


def _doc_key(doc: Document, settings: Settings) -> str:
    """What decides a document's chunks: its content, the chunking settings and the pipeline version."""
    return content_hash(doc.fingerprint(), PIPELINE_VERSION, str(settings.chunk_size), str(settings.chunk_overlap))


def _index_doc(ix: Indexes, doc: Document, source_key: str) -> int:
    chunks = chunk_document(doc, ix.settings.chunk_size, ix.settings.chunk_overlap)
    vecs = ix.embedder.passages([c.embed_text for c in chunks])
    metas = [_chunk_meta(doc, c.section, c.page) for c in chunks]
    _remove(ix, doc.doc_id)
    ix.vectors.add([c.chunk_id for c in chunks], [c.text for c in chunks], vecs, metas)
    ix.manifest.put_document(doc, chunks, source_key, _doc_key(doc, ix.settings))
    return len(chunks)


def _chunk_meta(doc: Document, section: str, page: int | None) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "kind": doc.kind, "title": doc.title, "source": doc.source,
            "section": section, "page": page, "field": doc.meta.get("field"), "year": doc.meta.get("year")}


def ingest_file(ix: Indexes, path: Path, kind: str | None, report: IngestReport) -> bool:
    """Ingest one file into every index; returns True if anything changed."""
    key = str(path.resolve())
    data = path.read_bytes()
    chunking = f"{ix.settings.chunk_size}/{ix.settings.chunk_overlap}"
    digest = f"{hashlib.sha256(data).hexdigest()}:{kind or ''}:{PIPELINE_VERSION}:{chunking}"
    if ix.manifest.file_hash(key) == digest:
        report.skipped += len(ix.manifest.docs_from(key))
        return False
    docs, row_errors = _file_docs(path, data, kind)
    report.failed.extend(FailedItem(path=str(path), error=e) for e in row_errors)
    changed = False
    with ix.manifest:
        for doc in docs:
            _unique_doc_id(ix, doc, key)
            if ix.manifest.fingerprint(doc.doc_id) == _doc_key(doc, ix.settings):
                report.skipped += 1
                continue
            report.chunks += _index_doc(ix, doc, key)
            report.ingested += 1
            changed = True
        for gone in set(ix.manifest.docs_from(key)) - {d.doc_id for d in docs}:
            _remove(ix, gone)
            report.deleted += 1
            changed = True
        ix.manifest.set_file(key, digest)
    return changed


def rebuild_lexical(ix: Indexes) -> None:
    """Rebuild BM25 from the manifest, so it always holds exactly the manifest's chunks."""
    rows = []
    for r in ix.manifest.iter_chunks():
        meta = json.loads(r["meta"])
        rows.append({**dict(r), "source": Path(r["source"]).name, "field": meta.get("field"), "year": meta.get("year")})
    lexical.build(rows, ix.settings.lexical, ix.settings.bm25_dir)
    ix.manifest.set_meta("lexical", ix.settings.lexical)
    ix.manifest.db.commit()


def ingest(paths: Iterable[Path], settings: Settings, kind: str | None = None,
           progress: Progress | None = None) -> IngestReport:
    """Ingest files and folders; bad files are reported in ``failed`` and the rest go in."""
    if kind is not None and kind not in KINDS:
        raise KBError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    report = IngestReport()
    ix = open_indexes(settings)
    files = expand(paths)
    changed = False
    for path in progress(files) if progress else files:
        try:
            if not path.exists():
                raise NotFoundError(f"{path}: no such file")
            changed |= ingest_file(ix, path, kind, report)
        except KBError as exc:
            report.failed.append(FailedItem(path=str(path), error=exc.message))
        except OSError as exc:
            report.failed.append(FailedItem(path=str(path), error=f"{path.name}: cannot read ({exc.strerror})"))
    if changed or not settings.bm25_dir.exists():
        rebuild_lexical(ix)
    ix.manifest.close()
    return report


def delete(doc_id: str, settings: Settings) -> int:
    """Remove a document and its chunks from every index; returns the chunks removed."""
    ix = open_indexes(settings)
    n = len(ix.manifest.chunk_ids(doc_id))
    if ix.manifest.document(doc_id) is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    with ix.manifest:
        source = ix.manifest.doc_source(doc_id)
        _remove(ix, doc_id)
        if source:
            ix.manifest.forget_file(source)  # so re-ingesting the file brings the document back
    rebuild_lexical(ix)
    ix.manifest.close()
    return n


def ingest_documents(docs: list[Document], settings: Settings, source_key: str,
                     progress: Callable[[Iterable[Document]], Iterable[Document]] | None = None) -> IngestReport:
    """Index already-built Documents (e.g. an evaluation corpus.jsonl) under one source key."""
    report = IngestReport()
    ix = open_indexes(settings)
    with ix.manifest:
        for doc in progress(docs) if progress else docs:
            if ix.manifest.fingerprint(doc.doc_id) == _doc_key(doc, ix.settings):
                report.skipped += 1
                continue
            report.chunks += _index_doc(ix, doc, source_key)
            report.ingested += 1
    if report.ingested or not settings.bm25_dir.exists():
        rebuild_lexical(ix)
    ix.manifest.close()
    return report
