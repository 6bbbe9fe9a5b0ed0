"""Writes pause between Chroma calls only while a search of the same process runs (KB_WRITE_PAUSE_MS).

Chroma's bindings hold Python's GIL through a call, so a search thread got one slice per write call and took
7-16 s during a 5,000-passage upload in the server; the soak test (tests/test_soak.py) measures the effect.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from kb.index import vectors
from kb.index.vectors import VectorStore, open_collection, reading


def _store(tmp_path: Path, pause_ms: int) -> VectorStore:
    return VectorStore(open_collection(tmp_path / "chroma", "", "pause-test"), pause_ms)


def _write(store: VectorStore, n: int) -> None:
    vecs = np.eye(n, 8, dtype=np.float32) + 0.01
    store.upsert([f"c{i}" for i in range(n)], [f"t{i}" for i in range(n)], vecs, [{"doc_id": "d"}] * n)


def test_writes_pause_after_each_call_only_while_a_search_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(vectors.time, "sleep", slept.append)
    monkeypatch.setattr(vectors, "_BATCH", 2)
    store = _store(tmp_path, 40)
    _write(store, 5)  # three calls, no search running: no pause
    assert slept == []
    with reading():
        _write(store, 5)
        store.delete(["c0", "c1", "c2"])
    assert slept == [0.04] * 5  # three upsert calls and two delete calls
    assert vectors._READERS[0] == 0
    slept.clear()
    _write(_store(tmp_path / "off", 0), 5)
    assert slept == []


def test_reading_counts_concurrent_searches() -> None:
    inside, release = threading.Event(), threading.Event()

    def search() -> None:
        with reading():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=search)
    t.start()
    assert inside.wait(10)
    with reading():
        assert vectors._READERS[0] == 2
    release.set()
    t.join(10)
    assert vectors._READERS[0] == 0
