"""The manifest: which documents and chunks are indexed (SQLite under KB_HOME)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.models import Chunk, Document, Stats

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
"""


class Manifest:
    """Thin data access over the manifest database; callers own transactions via ``with``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.db.commit()
        else:
            self.db.rollback()

    def close(self) -> None:
        self.db.close()

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

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

    def docs_from(self, source: str) -> list[str]:
        rows = self.db.execute("SELECT doc_id FROM documents WHERE source=?", (source,))
        return [str(r[0]) for r in rows]

    def chunk_ids(self, doc_id: str) -> list[str]:
        rows = self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY ord", (doc_id,))
        return [str(r[0]) for r in rows]

    def put_document(self, doc: Document, chunks: list[Chunk], source_key: str, fingerprint: str) -> None:
        """Record a document under the file it came from (``source_key``, a resolved path)."""
        self.db.execute(
            "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?)",
            (doc.doc_id, doc.kind, doc.title, source_key, fingerprint, len(chunks),
             json.dumps(doc.meta, ensure_ascii=False), time.time()),
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?,?)",
            [(c.chunk_id, c.doc_id, c.ord, c.text, c.embed_text, c.section, c.page) for c in chunks],
        )

    def delete_document(self, doc_id: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def forget_file(self, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE path=?", (path,))

    def counts(self) -> tuple[int, int]:
        d = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        c = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(d), int(c)

    def counts_by_kind(self) -> dict[str, int]:
        rows = self.db.execute("SELECT kind, COUNT(*) FROM documents GROUP BY kind ORDER BY kind")
        return {str(r[0]): int(r[1]) for r in rows}

    def iter_chunks(self) -> Iterator[sqlite3.Row]:
        """Every chunk with its document's fields, in a stable order (BM25 row order)."""
        yield from self.db.execute(
            "SELECT c.chunk_id, c.doc_id, c.text, c.embed_text, c.section, c.page, "
            "d.kind, d.title, d.source, d.meta FROM chunks c JOIN documents d USING(doc_id) "
            "ORDER BY c.chunk_id"
        )

    def chunk_rows(self, chunk_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Chunk fields plus document fields for the given ids."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            q = ",".join("?" * len(part))
            for r in self.db.execute(
                "SELECT c.chunk_id, c.doc_id, c.text, c.section, c.page, d.kind, d.title, "
                f"d.source, d.meta FROM chunks c JOIN documents d USING(doc_id) WHERE chunk_id IN ({q})",
                part,
            ):
                row = dict(r)
                row["meta"] = json.loads(row["meta"])
                out[row["chunk_id"]] = row
        return out

    def document(self, doc_id: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if r is None:
            return None
        row = dict(r)
        row["meta"] = json.loads(row["meta"])
        return row

    def stats(self) -> Stats:
        """The ``kb stats --json`` shape (shared by the CLI and the API)."""
        docs, chunks = self.counts()
        return Stats(documents=docs, chunks=chunks, by_kind=self.counts_by_kind(),
                     embed_model=self.get_meta("embed_model"), lexical=self.get_meta("lexical"))

    def page_documents(self, kind: str | None, after: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(total, up to ``limit`` documents with doc_id > ``after``, by id): keyset paging."""
        where, args = ("WHERE kind=?", [kind]) if kind else ("", [])
        total = int(self.db.execute(f"SELECT COUNT(*) FROM documents {where}", args).fetchone()[0])
        sql = (f"SELECT doc_id, kind, title, source, n_chunks, meta, at FROM documents "
               f"{where + ' AND' if where else 'WHERE'} doc_id > ? ORDER BY doc_id LIMIT ?")
        rows = [dict(r) for r in self.db.execute(sql, [*args, after, limit])]
        for r in rows:
            r["meta"] = json.loads(r["meta"])
        return total, rows
