"""Vector store: Chroma behind llama-index's ChromaVectorStore, always fed our own vectors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import NetworkForbiddenError

COLLECTION = "kb_chunks"


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


def open_collection(path: Path) -> Any:
    """The embedded (persistent) Chroma collection under ``path``, cosine space, telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    path.mkdir(parents=True, exist_ok=True)
    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return client.get_or_create_collection(
        COLLECTION,
        embedding_function=_refusing_embedding_function(),
        metadata={"hnsw:space": "cosine"},
    )


class VectorStore:
    """Add, delete and query chunk vectors; metadata flattened for Chroma."""

    def __init__(self, collection: Any) -> None:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self._collection = collection
        self._store = ChromaVectorStore(chroma_collection=collection)

    def add(self, ids: list[str], texts: list[str], vectors: np.ndarray, metas: list[dict[str, Any]]) -> None:
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        # the source relationship makes llama-index write our doc_id (not None) into its doc_id key
        nodes = [
            TextNode(id_=i, text=t, embedding=v.tolist(), metadata=_flat(m),
                     relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(m["doc_id"]))})
            for i, t, v, m in zip(ids, texts, vectors, metas, strict=True)
        ]
        if nodes:
            self._store.add(nodes)

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._store.delete_nodes(node_ids=ids)

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """Top-k (chunk id, cosine similarity), optionally restricted by a Chroma ``where``."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        n = self.count()
        if n == 0:
            return []
        q = VectorStoreQuery(query_embedding=vector.tolist(), similarity_top_k=min(k, n))
        res = self._store.query(q, where=where) if where else self._store.query(q)
        sims = res.similarities or []
        # ChromaVectorStore reports exp(-distance); with cosine space distance = 1 - cos
        return [(i, 1.0 + math.log(max(s, 1e-12))) for i, s in zip(res.ids or [], sims, strict=True)]

    def count(self) -> int:
        return int(self._collection.count())

    def ids(self) -> set[str]:
        return set(self._collection.get(include=[])["ids"])


def _flat(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata holds only str/int/float/bool; drop None, stringify the rest."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, int, float, bool)) else str(v)
    return out
