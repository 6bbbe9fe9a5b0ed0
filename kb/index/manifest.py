"""The manifest: which documents and chunks are indexed (SQLite under KB_HOME).

It is the commit point of the write path. Every document row carries the *generation* of the
write batch that stored it; ``meta.published_gen`` is the newest generation whose BM25 index is on
disk. Readers see only documents with ``gen <= published_gen`` (``VISIBLE``), so a document
committed here but not yet in BM25 stays invisible, and a crash before publishing hides it until
recovery completes it (see kb/ingest/pipeline.py). ``meta.written_gen`` is set in every write
transaction; ``written_gen != published_gen`` means a batch did not finish.

A manifest opened for a reader may be *scoped* (``scoped``) to the visibilities its caller may see: every read
of document rows or text below goes through ``_readable`` and leaves the others out. This is the one place the
read path enforces who may see what (search, ask, match, documents, facets, Dify, MCP all read through here).
"""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.models import CONTACT_KEY, VISIBILITIES, Chunk, Document, DuplicateLink, Stats, visibility_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, file_hash TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
  doc_id TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT NOT NULL, source TEXT NOT NULL,
  fingerprint TEXT NOT NULL, n_chunks INTEGER NOT NULL, meta TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks (
  chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
  ord INTEGER NOT NULL, text TEXT NOT NULL, embed_text TEXT NOT NULL,
  section TEXT NOT NULL, page INTEGER);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_doc_ord ON chunks(doc_id, ord);
CREATE TABLE IF NOT EXISTS minhash (doc_id TEXT PRIMARY KEY, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS duplicates (
  doc_id TEXT PRIMARY KEY, of_doc TEXT NOT NULL, similarity REAL NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (doc_id TEXT PRIMARY KEY, contact TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_versions (
  doc_id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL, meta TEXT NOT NULL,
  visibility TEXT NOT NULL, texts TEXT NOT NULL, replaced_at REAL NOT NULL, replaced_by TEXT NOT NULL,
  PRIMARY KEY (doc_id, version));
"""
PUBLISHED = "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key='published_gen'), 0)"
VISIBLE = f"d.gen <= {PUBLISHED}"  # SQL: the document ``d`` is published


class Manifest:
    """Thin data access over the manifest database; callers own transactions via ``with``."""

    def __init__(self, path: Path) -> None:
        self.readable: frozenset[str] | None = None  # visibilities a reader of this view sees; None: all
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Additive migrations: manifests made before generations count as published (gen 0); chunks made
        before the OCR and lookup flags have neither; documents made before visibilities are public."""
        cols = {str(r[1]) for r in self.db.execute("PRAGMA table_info(documents)")}
        if "gen" not in cols:
            self.db.execute("ALTER TABLE documents ADD COLUMN gen INTEGER NOT NULL DEFAULT 0")
        if "visibility" not in cols:
            self.db.execute("ALTER TABLE documents ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'")
        chunk_cols = {str(r[1]) for r in self.db.execute("PRAGMA table_info(chunks)")}
        for flag in ("ocr", "lookup"):
            if flag not in chunk_cols:
                self.db.execute(f"ALTER TABLE chunks ADD COLUMN {flag} INTEGER NOT NULL DEFAULT 0")
        self.db.commit()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.db.commit()
        else:
            self.db.rollback()

    def close(self) -> None:
        self.db.close()

    def scoped(self, visible: frozenset[str]) -> Manifest:
        """A view of this manifest (same connection) whose reads see only documents of these visibilities."""
        unknown = set(visible) - set(VISIBILITIES)
        if unknown:
            raise ValueError(f"unknown visibilities {sorted(unknown)}; valid: {', '.join(VISIBILITIES)}")
        view = copy.copy(self)
        view.readable = frozenset(visible)
        return view

    def _readable(self, alias: str = "d") -> str:
        """SQL: the document ``alias`` is published and of a visibility this view may read."""
        return f"{alias}.gen <= {PUBLISHED} AND {self.allowed(alias)}"

    def _readable_other(self) -> str:
        """SQL: the document a duplicate link ``x`` points to is readable too (else the link would name it)."""
        return f"EXISTS (SELECT 1 FROM documents o WHERE o.doc_id = x.of_doc AND {self._readable('o')})"

    def allowed(self, alias: str) -> str:
        """SQL: the row ``alias`` (a document, or a saved version of one) has a visibility this view may read."""
        if self.readable is None:
            return "1"
        allowed = ",".join(f"'{v}'" for v in sorted(self.readable)) or "NULL"  # values checked in scoped()
        return f"{alias}.visibility IN ({allowed})"

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _int_meta(self, key: str) -> int:
        value = self.get_meta(key)
        return int(value) if value and value.isdigit() else 0

    def published_gen(self) -> int:
        """The generation readers see (its BM25 index is on disk)."""
        return self._int_meta("published_gen")

    def written_gen(self) -> int:
        """The generation of the last committed write; above ``published_gen`` while a batch is open."""
        return max(self._int_meta("written_gen"), self.published_gen())

    def mark_written(self, gen: int) -> None:
        """Record, inside the caller's transaction, that generation ``gen`` changed the manifest."""
        self.set_meta("written_gen", str(gen))

    def publish(self, gen: int) -> None:
        """Make every document up to generation ``gen`` visible; commits."""
        self.set_meta("written_gen", str(gen))
        self.set_meta("published_gen", str(gen))
        self.db.commit()

    def pending_documents(self) -> list[str]:
        """Documents committed by a batch that has not published yet."""
        rows = self.db.execute(f"SELECT doc_id FROM documents d WHERE NOT ({VISIBLE}) ORDER BY doc_id")
        return [str(r[0]) for r in rows]

    def file_hash(self, path: str) -> str | None:
        row = self.db.execute("SELECT file_hash FROM files WHERE path=?", (path,)).fetchone()
        return None if row is None else str(row[0])

    def set_file(self, path: str, file_hash: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (path, file_hash, time.time()))

    def fingerprint(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT fingerprint FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def doc_source(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT source FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def doc_kind_and_source(self, doc_id: str) -> tuple[str, str] | None:
        row = self.db.execute("SELECT kind, source FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def docs_from(self, source: str) -> list[str]:
        rows = self.db.execute("SELECT doc_id FROM documents WHERE source=?", (source,))
        return [str(r[0]) for r in rows]

    def sources_under(self, folder: str) -> list[str]:
        """Indexed file paths (of documents or of the file table) inside ``folder``, a resolved path."""
        prefix = folder.rstrip("/") + "/"
        rows = self.db.execute(
            "SELECT source FROM documents WHERE substr(source, 1, ?) = ? UNION "
            "SELECT path FROM files WHERE substr(path, 1, ?) = ? ORDER BY 1", (len(prefix), prefix, len(prefix), prefix))
        return [str(r[0]) for r in rows]

    def files_under(self, folder: str) -> dict[str, str]:
        """{path: file hash} of the indexed files inside ``folder``, a resolved path."""
        prefix = folder.rstrip("/") + "/"
        rows = self.db.execute("SELECT path, file_hash FROM files WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))
        return {str(r[0]): str(r[1]) for r in rows}

    def chunk_ids(self, doc_id: str) -> list[str]:
        rows = self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY ord", (doc_id,))
        return [str(r[0]) for r in rows]

    def put_document(self, doc: Document, chunks: list[Chunk], source_key: str, fingerprint: str,
                     gen: int = 0) -> None:
        """Record a document under the file it came from (``source_key``, a resolved path).

        Its contact details go to their own table, never into ``meta``, which search, ask and match show."""
        meta = {k: v for k, v in doc.meta.items() if k != CONTACT_KEY}
        contact = str(doc.meta.get(CONTACT_KEY) or "").strip()
        self.db.execute("DELETE FROM contacts WHERE doc_id=?", (doc.doc_id,))
        if contact:
            self.db.execute("INSERT INTO contacts VALUES (?, ?)", (doc.doc_id, contact))
        self.db.execute(
            "INSERT OR REPLACE INTO documents (doc_id, kind, title, source, fingerprint, n_chunks, meta, at, gen, "
            "visibility) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (doc.doc_id, doc.kind, doc.title, source_key, fingerprint, len(chunks),
             json.dumps(meta, ensure_ascii=False), time.time(), gen, visibility_of(doc.meta)),
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO chunks (chunk_id, doc_id, ord, text, embed_text, section, page, ocr, lookup) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(c.chunk_id, c.doc_id, c.ord, c.text, c.embed_text, c.section, c.page, int(c.ocr), int(c.lookup))
             for c in chunks],
        )

    def delete_document(self, doc_id: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        self.db.execute("DELETE FROM minhash WHERE doc_id=?", (doc_id,))
        self.db.execute("DELETE FROM duplicates WHERE doc_id=? OR of_doc=?", (doc_id, doc_id))
        self.db.execute("DELETE FROM contacts WHERE doc_id=?", (doc_id,))

    def contact(self, doc_id: str) -> str | None:
        """A record's contact details (for the record endpoint, to a caller allowed to see them)."""
        row = self.db.execute("SELECT x.contact FROM contacts x JOIN documents d USING(doc_id) "
                              f"WHERE x.doc_id=? AND {self._readable()}", (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def changed_since(self, kinds: tuple[str, ...], since: float) -> list[tuple[str, str, float]]:
        """(doc_id, kind, time) of published documents of these kinds stored (new or changed) after ``since``."""
        q = ",".join("?" * len(kinds))
        rows = self.db.execute(f"SELECT doc_id, kind, at FROM documents d WHERE kind IN ({q}) AND at > ? "
                               f"AND {VISIBLE} ORDER BY at, doc_id", (*kinds, since))
        return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    # ---- near-duplicates (kb/ingest/duplicates.py) -----------------------------------------------

    def put_minhash(self, doc_id: str, signature: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO minhash VALUES (?, ?)", (doc_id, signature))

    def minhashes(self) -> Iterator[tuple[str, bytes]]:
        for r in self.db.execute("SELECT doc_id, signature FROM minhash ORDER BY doc_id"):
            yield str(r[0]), bytes(r[1])

    def link_duplicate(self, doc_id: str, of_doc: str, similarity: float) -> None:
        """Record ``doc_id`` as a possible duplicate of the earlier ``of_doc``."""
        self.db.execute("INSERT OR REPLACE INTO duplicates VALUES (?, ?, ?)", (doc_id, of_doc, similarity))

    def duplicate_links(self) -> list[tuple[str, str, float]]:
        """(document, the document it possibly duplicates, estimated similarity), published documents only."""
        rows = self.db.execute(
            "SELECT x.doc_id, x.of_doc, x.similarity FROM duplicates x JOIN documents d ON d.doc_id = x.doc_id "
            f"JOIN documents o ON o.doc_id = x.of_doc WHERE {self._readable()} AND {self._readable('o')} ORDER BY x.doc_id")
        return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    def forget_file(self, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE path=?", (path,))

    def counts(self) -> tuple[int, int]:
        d = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        c = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(d), int(c)

    def published_counts(self) -> tuple[int, int]:
        """(documents, chunks) readers can see: a write's documents count once it is published."""
        d = self.db.execute(f"SELECT COUNT(*) FROM documents d WHERE {self._readable()}").fetchone()[0]
        c = self.db.execute(f"SELECT COALESCE(SUM(n_chunks), 0) FROM documents d WHERE {self._readable()}").fetchone()[0]
        return int(d), int(c)

    def counts_by_kind(self) -> dict[str, int]:
        """Published documents by kind."""
        rows = self.db.execute(f"SELECT kind, COUNT(*) FROM documents d WHERE {self._readable()} GROUP BY kind ORDER BY kind")
        return {str(r[0]): int(r[1]) for r in rows}

    def iter_chunks(self) -> Iterator[sqlite3.Row]:
        """Every chunk with its document's fields, in a stable order (BM25 row order)."""
        yield from self.db.execute(
            "SELECT c.chunk_id, c.doc_id, c.text, c.embed_text, c.section, c.page, "
            "d.kind, d.title, d.source, d.meta FROM chunks c JOIN documents d USING(doc_id) "
            "ORDER BY c.chunk_id"
        )

    def kind_chunks(self, kind: str) -> Iterator[tuple[str, str, str, str]]:
        """(doc_id, title, meta JSON, chunk text) of every published document of a kind, by id and chunk order."""
        for r in self.db.execute(
            "SELECT d.doc_id, d.title, d.meta, c.text FROM documents d JOIN chunks c USING(doc_id) "
            f"WHERE d.kind=? AND {self._readable()} ORDER BY d.doc_id, c.ord", (kind,)):
            yield str(r[0]), str(r[1]), str(r[2]), str(r[3])

    def chunk_rows(self, chunk_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Chunk fields plus document fields for the given ids, of published documents only."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            q = ",".join("?" * len(part))
            for r in self.db.execute(
                "SELECT c.chunk_id, c.doc_id, c.ord, c.text, c.section, c.page, c.ocr, c.lookup, d.kind, d.title, "
                "d.source, d.meta, x.of_doc AS duplicate_of FROM chunks c JOIN documents d USING(doc_id) "
                f"LEFT JOIN duplicates x ON x.doc_id = c.doc_id AND {self._readable_other()} "
                f"WHERE chunk_id IN ({q}) AND {self._readable()}",
                part,
            ):
                row = dict(r)
                row["meta"] = json.loads(row["meta"])
                out[row["chunk_id"]] = row
        return out

    def visible(self, chunk_ids: list[str]) -> set[str]:
        """The given chunk ids that belong to published documents."""
        out: set[str] = set()
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            out.update(str(r[0]) for r in self.db.execute(
                f"SELECT c.chunk_id FROM chunks c JOIN documents d USING(doc_id) "
                f"WHERE chunk_id IN ({','.join('?' * len(part))}) AND {VISIBLE}", part))
        return out

    def chunk_span(self, doc_id: str, first: int, last: int) -> list[tuple[int, str, str]]:
        """(ordinal, section, text) of a document's chunks ``first``..``last``, in order."""
        rows = self.db.execute("SELECT ord, section, text FROM chunks WHERE doc_id=? AND ord BETWEEN ? AND ? ORDER BY ord",
                               (doc_id, first, last))
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A published document's row."""
        r = self.db.execute("SELECT d.*, x.of_doc AS duplicate_of FROM documents d LEFT JOIN duplicates x "
                            f"ON x.doc_id = d.doc_id AND {self._readable_other()} WHERE d.doc_id=? AND {self._readable()}",
                            (doc_id,)).fetchone()
        if r is None:
            return None
        row = dict(r)
        row["meta"] = json.loads(row["meta"])
        return row

    def stats(self) -> Stats:
        """The ``kb stats --json`` shape (shared by the CLI and the API): what readers can see."""
        docs, chunks = self.published_counts()
        ocr = int(self.db.execute("SELECT COUNT(*) FROM chunks c JOIN documents d USING(doc_id) "
                                  f"WHERE c.ocr=1 AND {self._readable()}").fetchone()[0])
        dups = [DuplicateLink(doc_id=d, duplicate_of=o, similarity=s) for d, o, s in self.duplicate_links()]
        return Stats(documents=docs, chunks=chunks, by_kind=self.counts_by_kind(), ocr_chunks=ocr,
                     duplicates=dups, embed_model=self.get_meta("embed_model"), lexical=self.get_meta("lexical"))

    def facet_counts(self, key: str) -> dict[str, int]:
        """Published documents per value of ``kind`` or of a meta key (``field``, ``year``); no value, no entry."""
        expr = "kind" if key == "kind" else "json_extract(meta, ?)"
        args = [] if key == "kind" else [f"$.{key}"]
        rows = self.db.execute(f"SELECT {expr} AS v, COUNT(*) FROM documents d WHERE {self._readable()} AND v IS NOT NULL "
                               "AND TRIM(v) != '' GROUP BY v ORDER BY v", args)
        return {str(r[0]): int(r[1]) for r in rows}

    def previous_text(self, chunk_id: str) -> str | None:
        """The text of the chunk before this one in its document (None for a first chunk or an unknown id)."""
        r = self.db.execute("SELECT p.text FROM chunks c JOIN chunks p ON p.doc_id = c.doc_id AND p.ord = c.ord - 1 "
                            "WHERE c.chunk_id=?", (chunk_id,)).fetchone()
        return None if r is None else str(r[0])

    def document_chunks(self, doc_id: str) -> list[dict[str, Any]]:
        """Every chunk of a readable document in order: chunk_id, ord, section, page, text."""
        rows = self.db.execute("SELECT c.chunk_id, c.ord, c.section, c.page, c.text FROM chunks c JOIN documents d "
                               f"USING(doc_id) WHERE c.doc_id=? AND {self._readable()} ORDER BY c.ord", (doc_id,))
        return [dict(r) for r in rows]

    def page_documents(self, kind: str | None, after: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(total, up to ``limit`` documents with doc_id > ``after``, by id): keyset paging."""
        where, args = (f"WHERE d.kind=? AND {self._readable()}", [kind]) if kind else (f"WHERE {self._readable()}", [])
        total = int(self.db.execute(f"SELECT COUNT(*) FROM documents d {where}", args).fetchone()[0])
        sql = (f"SELECT d.doc_id, kind, title, source, n_chunks, meta, at, x.of_doc AS duplicate_of FROM documents d "
               f"LEFT JOIN duplicates x ON x.doc_id = d.doc_id AND {self._readable_other()} {where} AND d.doc_id > ? "
               "ORDER BY d.doc_id LIMIT ?")
        rows = [dict(r) for r in self.db.execute(sql, [*args, after, limit])]
        for r in rows:
            r["meta"] = json.loads(r["meta"])
        return total, rows

    # ---- consistency (kb check, crash recovery) ----------------------------------------------

    def doc_chunk_ids(self) -> dict[str, list[str]]:
        """Every document's chunk ids (documents without chunks included, with none)."""
        out: dict[str, list[str]] = {str(r[0]): [] for r in self.db.execute("SELECT doc_id FROM documents")}
        for doc_id, chunk_id in self.db.execute("SELECT doc_id, chunk_id FROM chunks ORDER BY doc_id, ord"):
            out.setdefault(str(doc_id), []).append(str(chunk_id))
        return out

    def visible_chunk_ids(self) -> set[str]:
        """Chunk ids of published documents: what BM25 and search should hold."""
        rows = self.db.execute(f"SELECT c.chunk_id FROM chunks c JOIN documents d USING(doc_id) WHERE {VISIBLE}")
        return {str(r[0]) for r in rows}

    def integrity(self) -> list[str]:
        """SQLite's own check plus the manifest's: [] when sound, else one line per problem."""
        out = [str(r[0]) for r in self.db.execute("PRAGMA integrity_check")]
        problems = [] if out == ["ok"] else [f"sqlite integrity_check: {x}" for x in out[:20]]
        for doc_id, want, have in self.db.execute(
            "SELECT d.doc_id, d.n_chunks, COUNT(c.chunk_id) FROM documents d LEFT JOIN chunks c USING(doc_id) "
            "GROUP BY d.doc_id HAVING d.n_chunks != COUNT(c.chunk_id)"
        ):
            problems.append(f"document {doc_id}: manifest says {want} chunks, has {have}")
        stray = self.db.execute(
            "SELECT COUNT(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.doc_id=c.doc_id)"
        ).fetchone()[0]
        if stray:
            problems.append(f"{stray} chunks belong to no document")
        return problems
