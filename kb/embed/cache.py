"""Content-hash cache of passage vectors: text that was embedded once is never sent to the model again.

Keyed by (embedder name, sha256 of the side and the exact text), so vectors of different models or
backends never mix, and re-ingesting an unchanged corpus -- into this index or a fresh one -- costs
no model calls. The store is one SQLite file shared by every process; a cache that cannot be read
or written only costs speed, never an ingest.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kb.embed.base import Embedder

log = logging.getLogger(__name__)
_SCHEMA = ("CREATE TABLE IF NOT EXISTS vectors "
           "(model TEXT NOT NULL, key BLOB NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, key))")
_LOOKUP = 500  # keys per SELECT, well under SQLite's bound-parameter limit


def text_key(side: str, text: str) -> bytes:
    """sha256 of what the model sees: the side decides the prefix, the text the rest."""
    return hashlib.sha256(f"{side}\0{text}".encode()).digest()


class VectorStoreFile:
    """The SQLite file of cached vectors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as con:
            con.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer in another process
            con.execute(_SCHEMA)
            yield con

    def get(self, model: str, keys: list[bytes], dim: int) -> dict[bytes, np.ndarray]:
        """The cached vectors among keys (a stored vector of another size is ignored)."""
        found: dict[bytes, np.ndarray] = {}
        with self._connect() as con:
            for start in range(0, len(keys), _LOOKUP):
                part = keys[start : start + _LOOKUP]
                rows = con.execute(f"SELECT key, vec FROM vectors WHERE model = ? AND key IN ({','.join('?' * len(part))})",
                                   [model, *part])
                found.update((k, np.frombuffer(v, np.float32)) for k, v in rows if len(v) == 4 * dim)
        return found

    def put(self, model: str, items: dict[bytes, np.ndarray]) -> None:
        """Store vectors (float32) under their keys, in one transaction."""
        with self._connect() as con, con:
            con.executemany("INSERT OR REPLACE INTO vectors (model, key, vec) VALUES (?, ?, ?)",
                            [(model, k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()])


class CachedEmbedder:
    """Wraps an embedder: passages() embeds only texts not cached yet; queries() passes through."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner, self.store = inner, VectorStoreFile(path)
        self.name, self.dim = inner.name, inner.dim

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.queries(texts)  # short and seldom repeated; the searcher keeps its own cache

    def passages(self, texts: list[str]) -> np.ndarray:
        keys = [text_key("passage", t) for t in texts]
        try:
            known = self.store.get(self.name, keys, self.dim)
        except sqlite3.Error as exc:
            log.warning("vector cache %s unreadable (%s); embedding everything", self.store.path, exc)
            known = {}
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}  # dict: duplicates embedded once
        if todo:
            vecs = self.inner.passages(list(todo.values()))
            fresh = dict(zip(todo, np.asarray(vecs, np.float32), strict=True))
            try:
                self.store.put(self.name, fresh)
            except sqlite3.Error as exc:
                log.warning("vector cache %s not written (%s)", self.store.path, exc)
            known |= fresh
        return np.stack([known[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, self.dim), np.float32)
