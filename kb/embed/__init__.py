"""Embedding: the ``Embedder`` protocol, model backends, the int8 ONNX graph, the vector cache, a fake for tests."""

from kb.embed.base import BUNDLED, Embedder
from kb.embed.loader import load_embedder

__all__ = ["BUNDLED", "Embedder", "load_embedder"]
