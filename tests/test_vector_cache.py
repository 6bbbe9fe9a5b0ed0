"""The content-hash vector cache: text embedded once is never embedded again, by this index or a fresh one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import kb.embed.loader
from kb.embed.cache import CachedEmbedder, text_key
from kb.settings import get_settings


class CountingEmbedder:
    """Deterministic vectors from a hash of the text; records every text it is asked to embed."""

    dim = 8

    def __init__(self, name: str = "fake:count") -> None:
        self.name = name
        self.seen: list[str] = []

    def passages(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        raw = np.array([list(hashlib.sha256(t.encode()).digest()[: self.dim]) for t in texts], np.float32) - 127.5
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)

    queries = passages


def test_second_call_embeds_nothing_and_returns_the_same_vectors(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    emb = CachedEmbedder(inner, tmp_path / "v.sqlite3")
    first = emb.passages(["煤层气", "排采", "煤层气"])
    assert inner.seen == ["煤层气", "排采"]  # the duplicate is embedded once
    second = CachedEmbedder(CountingEmbedder(), tmp_path / "v.sqlite3")
    assert np.array_equal(second.passages(["排采", "煤层气"]), first[[1, 0]])
    assert second.inner.seen == []  # type: ignore[attr-defined]
    assert emb.passages([]).shape == (0, 8)


def test_other_models_and_sides_do_not_share_vectors(tmp_path: Path) -> None:
    CachedEmbedder(CountingEmbedder("fake:a"), tmp_path / "v.sqlite3").passages(["瓦斯发电"])
    other = CountingEmbedder("fake:b")
    CachedEmbedder(other, tmp_path / "v.sqlite3").passages(["瓦斯发电"])
    assert other.seen == ["瓦斯发电"]
    assert text_key("passage", "x") != text_key("query", "x")


def test_unreadable_cache_costs_speed_not_the_ingest(tmp_path: Path) -> None:
    bad = tmp_path / "v.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    inner = CountingEmbedder()
    vecs = CachedEmbedder(inner, bad).passages(["水平井"])
    assert vecs.shape == (1, 8) and inner.seen == ["水平井"]


@pytest.fixture
def counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CountingEmbedder:
    """Every load_embedder call gets one counting fake; the vector cache lives in tmp."""
    fake = CountingEmbedder()
    monkeypatch.setattr(kb.embed.loader, "_load", lambda *a, **k: fake)
    monkeypatch.setenv("KB_MODEL_CACHE", str(tmp_path / "cache"))
    get_settings.cache_clear()
    return fake


def _ingest_into(home: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.ingest.pipeline import ingest

    monkeypatch.setenv("KB_HOME", str(home))
    get_settings.cache_clear()
    assert ingest([corpus], get_settings()).failed == []


def test_reingest_unchanged_corpus_makes_no_model_calls(counting: CountingEmbedder, mini_corpus: Path,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest_into(tmp_path / "home1", mini_corpus, monkeypatch)
    assert len(counting.seen) >= 4
    counting.seen.clear()
    _ingest_into(tmp_path / "home2", mini_corpus, monkeypatch)  # a fresh index, the same text
    assert counting.seen == []


def test_changed_file_embeds_only_its_new_chunks(counting: CountingEmbedder, mini_corpus: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest_into(tmp_path / "home1", mini_corpus, monkeypatch)
    counting.seen.clear()
    f = mini_corpus / "gas_use.md"
    f.write_text(f.read_text(encoding="utf-8").replace("细水雾", "阻火器和细水雾"), encoding="utf-8")
    _ingest_into(tmp_path / "home2", mini_corpus, monkeypatch)
    assert len(counting.seen) == 1 and "阻火器" in counting.seen[0]
