"""Vector store: a Chroma collection, always fed our own vectors.

Written and queried through chromadb directly: the llama-index layer we used to write through cost 2-3 s
of imports in every ingest process (measured with -X importtime) and a node object per chunk, for
metadata nothing of ours reads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from kb.errors import KBError, NetworkForbiddenError
from kb.settings import Settings

COLLECTION = "kb_chunks"
# ids per Chroma call. Chroma's bindings hold Python's GIL through a call (1,000 vectors: 1.5 s on an idle box),
# stalling every other thread; 200 hold it 0.3-1 s and write as fast (5,000 vectors: 5.5 s against 6.2 s)
_BATCH = 200


def _refusing_embedding_function() -> Any:
    """A Chroma embedding function that refuses to embed.

    Chroma falls back to downloading an ONNX model whenever it is handed text without vectors,
    even with ``embedding_function=None``; this makes such a call fail loudly instead.
    """
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class RefuseToEmbed(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            raise NetworkForbiddenError(
                "Chroma was asked to embed text itself; cbm-kb always supplies vectors"
            )

        @staticmethod
        def name() -> str:
            return "cbm-kb-refuse"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> RefuseToEmbed:
            return RefuseToEmbed()

    return RefuseToEmbed()


class StoreUnavailableError(KBError):
    """The Chroma server named by KB_CHROMA_URL did not answer (a retry may succeed)."""

    code = "store_unavailable"
    status = 503


@contextmanager
def _reachable(url: str) -> Iterator[None]:
    """Turn the Chroma client's connection failures into one clear StoreUnavailableError."""
    import httpx

    try:
        yield
    except httpx.TransportError as exc:
        where = url or "KB_CHROMA_URL"
        raise StoreUnavailableError(f"the Chroma server at {where} did not answer ({type(exc).__name__})") from None
    except ValueError as exc:  # chromadb.HttpClient reports a refused connection as a ValueError
        if "Could not connect" not in str(exc):
            raise
        raise StoreUnavailableError(f"no Chroma server answers at {url} (KB_CHROMA_URL); is `chroma run` up?") from None


def _client(path: Path, url: str) -> Any:
    """A Chroma client: HTTP when ``url`` is set, else embedded under ``path``; telemetry off either way."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    quiet = ChromaSettings(anonymized_telemetry=False)
    if not url:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=quiet)
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    with _reachable(url):
        return chromadb.HttpClient(host=parts.hostname or "", port=parts.port or (443 if tls else 80),
                                   ssl=tls, settings=quiet)


def open_collection(path: Path, url: str = "", name: str = COLLECTION) -> Any:
    """The collection ``name`` (cosine space), embedded under ``path`` or on the server at ``url``.

    In both modes the collection gets the refusing embedding function: the HTTP client embeds on
    the client side too, so this is what keeps a server-mode store from fetching a model.
    """
    client = client_for(path, url)
    with _OPENING, _reachable(url):
        return client.get_or_create_collection(
            name,
            embedding_function=_refusing_embedding_function(),
            metadata={"hnsw:space": "cosine"},
        )


# One client per process and store. Chroma shares one "system" (the loaded indexes) per path, and a
# client that is dropped without close() keeps it alive: each reopen after a write kept another
# copy of the index and ~20 file handles (measured: +25 MB and +20 fds per write + search cycle).
_CLIENTS: dict[str, Any] = {}
_OPENING = threading.RLock()  # two threads creating a client at once break it ("no attribute bindings")


_READERS = [0]  # searches running in this process (``reading``); writes pause for them
_READERS_LOCK = threading.Lock()


def _pause_for_readers(seconds: float) -> None:
    """After a write call, while a search of this process runs, let it have the GIL: it got only one slice per
    Chroma call otherwise, and took 7-16 s during a 5,000-passage upload (KB_WRITE_PAUSE_MS)."""
    if seconds and _READERS[0]:
        time.sleep(seconds)


@contextmanager
def reading() -> Iterator[None]:
    """Mark a search running in this process, so that writes in other threads pause between Chroma calls."""
    with _READERS_LOCK:
        _READERS[0] += 1
    try:
        yield
    finally:
        with _READERS_LOCK:
            _READERS[0] -= 1


def _store_key(path: Path, url: str) -> str:
    return url or str(path.resolve())


def _alive(client: Any) -> bool:
    """False once someone cleared Chroma's shared-system cache under the client (it would raise KeyError)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    return client._identifier in SharedSystemClient._identifier_to_system


def client_for(path: Path, url: str = "") -> Any:
    """This process's client of the store at ``path`` (or ``url``), created on first use."""
    key = _store_key(path, url)
    with _OPENING:
        client = _CLIENTS.get(key)
        if client is None or not _alive(client):
            client = _CLIENTS[key] = _client(path, url)
        return client


def release(settings: Settings) -> bool:
    """Close this process's client of the settings' store (its indexes leave memory); the next open reads
    the store from disk afresh, with what other processes wrote. The caller makes sure no other thread
    is using it (the API does this holding the writer lock). False if none was open."""
    with _OPENING:
        client = _CLIENTS.pop(_store_key(settings.chroma_dir, settings.chroma_url), None)
    if client is None:
        return False
    if _alive(client):
        client.close()
    return True


def release_under(root: Path) -> int:
    """Close this process's clients of embedded stores under ``root`` (a KB home that is being thrown away: each
    client holds a Chroma runtime with ~20 file handles until it is closed). How many were closed."""
    prefix = str(root.resolve())
    with _OPENING:
        gone = [k for k in _CLIENTS if k == prefix or k.startswith(prefix + "/")]
        clients = [_CLIENTS.pop(k) for k in gone]
    for client in clients:
        if _alive(client):
            client.close()
    return len(clients)


def collection_for(settings: Settings) -> Any:
    """The collection holding the settings' vectors: KB_CHROMA_URL's server if set, else the one in KB_HOME."""
    return open_collection(settings.chroma_dir, settings.chroma_url, active_name(settings))


def pointer_key(settings: Settings) -> str:
    """The manifest meta key naming the collection that holds KB_CHROMA_COLLECTION's vectors after a compaction."""
    return f"collection:{settings.chroma_collection}"


def active_name(settings: Settings) -> str:
    """KB_CHROMA_COLLECTION, or the compacted copy that replaced it (kb/index/compact.py), as the manifest says.

    The manifest is the commit point of a compaction as of any write: readers follow its pointer, so a
    crash leaves either the old collection or the complete new one in use, never a missing one.
    """
    if not settings.manifest_path.exists():
        return settings.chroma_collection
    db = sqlite3.connect(str(settings.manifest_path), timeout=30)
    try:
        row = db.execute("SELECT value FROM meta WHERE key=?", (pointer_key(settings),)).fetchone()
    except sqlite3.Error:  # a manifest from before the meta table, or none yet
        row = None
    finally:
        db.close()
    return str(row[0]) if row else settings.chroma_collection


class VectorStore:
    """Add, delete and query chunk vectors; metadata flattened for Chroma."""

    def __init__(self, collection: Any, pause_ms: int = 0) -> None:
        self._collection = collection
        self._pause_s = pause_ms / 1000

    @property
    def collection(self) -> Any:
        return self._collection

    def upsert(self, ids: list[str], texts: list[str], vectors: np.ndarray, metas: list[dict[str, Any]]) -> None:
        """Add vectors, replacing any with the same id: Chroma's ``add`` keeps an existing id's old metadata.

        The write path upserts a document's new chunks *before* it drops the old ones, so an unchanged
        chunk id of a changed document is never missing from Chroma, even for a moment.
        """
        vecs = np.asarray(vectors, dtype=np.float32)
        for s in range(0, len(ids), _BATCH):
            with _reachable(""):
                self._collection.upsert(ids=ids[s : s + _BATCH], embeddings=vecs[s : s + _BATCH],
                                        metadatas=[_flat(m) for m in metas[s : s + _BATCH]],
                                        documents=texts[s : s + _BATCH])
            _pause_for_readers(self._pause_s)

    def present_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` Chroma holds (fetched by id, not counted)."""
        out: set[str] = set()
        for s in range(0, len(ids), _BATCH):
            with _reachable(""):
                out.update(self._collection.get(ids=ids[s : s + _BATCH], include=[])["ids"])
        return out

    def delete(self, ids: list[str]) -> None:
        for s in range(0, len(ids), _BATCH):
            with _reachable(""):
                self._collection.delete(ids=ids[s : s + _BATCH])
            _pause_for_readers(self._pause_s)

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """Top-k (chunk id, cosine similarity), optionally restricted by a Chroma ``where``."""
        # distances only: with documents and metadatas included, every hit's text and metadata came back
        # too (measured at 100k chunks: 10-14 ms per query vs 1.5-2.5 ms), and the
        # Searcher reads those from the manifest anyway. No count() first: Chroma 1.5 returns fewer
        # than k hits by itself, and against a server a count is one more round trip.
        with _reachable(""):
            res = self._collection.query(query_embeddings=[vector.astype(np.float32)], n_results=k,
                                         where=where or None, include=["distances"])
        ids, dists = (res.get("ids") or [[]])[0], (res.get("distances") or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]  # cosine space: d = 1 - cos

    def count(self) -> int:
        with _reachable(""):
            return int(self._collection.count())

    def ids(self) -> set[str]:
        with _reachable(""):
            return set(self._collection.get(include=[])["ids"])


def copy_vectors(src: Any, dst: Any, pause_ms: int = 0) -> int:
    """Every vector of collection ``src`` (with its metadata and text) into ``dst``; returns how many. ``pause_ms``
    after each batch while a search runs, as for writes: a server compacts while it answers searches."""
    with _reachable(""):
        ids = src.get(include=[])["ids"]
        for s in range(0, len(ids), _BATCH):
            part = src.get(ids=ids[s : s + _BATCH], include=["embeddings", "metadatas", "documents"])
            dst.upsert(ids=part["ids"], embeddings=part["embeddings"], metadatas=part["metadatas"],
                       documents=part["documents"])
            _pause_for_readers(pause_ms / 1000)
        copied = int(dst.count())
    if copied != len(ids):
        raise KBError(f"copying the vector store kept {copied} of {len(ids)} vectors; the original stays in use")
    return copied


def _flat(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata holds only str/int/float/bool; drop None, stringify the rest."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, int, float, bool)) else str(v)
    return out
