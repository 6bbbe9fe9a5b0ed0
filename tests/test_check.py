"""``kb check``: the manifest, Chroma and BM25 compared chunk id by chunk id; ``--repair`` mends them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from api.jobs import JobRunner
from kb.cli import main
from kb.index.check import compare
from kb.index.manifest import Manifest
from kb.index.vectors import VectorStore, collection_for
from kb.ingest.pipeline import ingest
from kb.settings import Settings


def _check(*extra: str) -> tuple[int, dict[str, Any]]:
    r = CliRunner().invoke(main, ["check", "--json", *extra])
    return r.exit_code, json.loads(r.stdout)


def _chunk_ids(s: Settings, doc_id: str) -> list[str]:
    m = Manifest(s.manifest_path)
    try:
        return m.chunk_ids(doc_id)
    finally:
        m.close()


@pytest.fixture
def indexed(mini_corpus: Path, settings: Settings) -> Settings:
    assert ingest([mini_corpus], settings).ingested == 4
    return settings


def test_clean_index_is_ok_with_exact_fields(indexed: Settings) -> None:
    code, rep = _check()
    chunks = sum(len(_chunk_ids(indexed, d)) for d in ("horizontal", "dewatering", "gas_use", "lng_en"))
    assert code == 0
    assert {k: rep[k] for k in ("ok", "documents", "chunks", "problems")} == {
        "ok": True, "documents": 4, "chunks": chunks, "problems": []}
    assert (rep["vectors"], rep["bm25"], rep["repaired"]) == (chunks, chunks, [])
    r = CliRunner().invoke(main, ["check"])
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: 4 documents, {chunks} chunks;")


def test_missing_vectors_are_found_by_id_and_repair_rolls_the_document_back(indexed: Settings,
                                                                          mini_corpus: Path) -> None:
    ids = _chunk_ids(indexed, "horizontal")
    VectorStore(collection_for(indexed)).delete(ids[:1])
    code, rep = _check()
    assert code == 1 and not rep["ok"]
    assert rep["problems"] == [f"document horizontal: 1 of {len(ids)} chunks missing from Chroma"]
    code, rep = _check("--repair")
    assert code == 0 and rep["ok"] and rep["documents"] == 3
    assert rep["repaired"][0] == "rolled back 1 documents missing vectors: horizontal"
    assert ingest([mini_corpus], indexed).ingested == 1  # the file is read again: the document comes back
    code, rep = _check()
    assert code == 0 and rep["documents"] == 4


def test_orphan_vectors_are_reported_and_removed(indexed: Settings) -> None:
    vs = VectorStore(collection_for(indexed))
    vs.upsert(["orphan-1"], ["孤立向量"], np.ones((1, 256), dtype=np.float32), [{"doc_id": "gone"}])
    code, rep = _check()
    assert code == 1 and rep["problems"] == ["1 vectors in Chroma belong to no manifest document"]
    code, rep = _check("--repair")
    assert code == 0 and rep["repaired"] == ["removed 1 vectors that no manifest document names"]
    assert "orphan-1" not in vs.ids()


def test_missing_bm25_is_rebuilt(indexed: Settings) -> None:
    shutil.rmtree(indexed.bm25_dir.resolve())
    code, rep = _check()
    assert code == 1 and rep["problems"] == ["BM25 index is missing"]
    code, rep = _check("--repair")
    assert code == 0 and rep["ok"] and rep["bm25"] == rep["chunks"]


def test_unpublished_documents_are_hidden_then_published_by_repair(indexed: Settings) -> None:
    """What a crash between the manifest commit and the BM25 swap leaves behind."""
    m = Manifest(indexed.manifest_path)
    gen = m.published_gen() + 1
    m.db.execute("UPDATE documents SET gen=? WHERE doc_id='gas_use'", (gen,))
    m.mark_written(gen)
    m.db.commit()
    assert m.document("gas_use") is None and m.chunk_rows(_chunk_ids(indexed, "gas_use")) == {}
    m.close()
    code, rep = _check()
    assert code == 1
    assert rep["problems"][-1] == "1 documents were committed but never published (an interrupted write): gas_use"
    code, rep = _check("--repair")
    assert code == 0 and rep["ok"] and rep["documents"] == 4


def test_api_start_finishes_an_interrupted_write(indexed: Settings) -> None:
    m = Manifest(indexed.manifest_path)
    m.db.execute("UPDATE documents SET gen=? WHERE doc_id='gas_use'", (m.published_gen() + 1,))
    m.mark_written(m.published_gen() + 1)
    m.db.commit()
    m.close()
    vs = VectorStore(collection_for(indexed))
    vs.upsert(["orphan-1"], ["孤立向量"], np.ones((1, 256), dtype=np.float32), [{"doc_id": "gone"}])
    JobRunner(indexed, on_change=lambda: None).close()
    code, rep = _check()
    assert code == 0 and rep["documents"] == 4 and rep["vectors"] == rep["chunks"]


def test_corrupt_sqlite_is_a_problem_not_a_crash(indexed: Settings) -> None:
    path = indexed.manifest_path
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the first page: schema and header fields
    path.write_bytes(bytes(data))
    for wal in path.parent.glob(path.name + "-*"):
        wal.unlink()
    code, rep = _check()
    assert code == 1 and not rep["ok"]
    assert rep["problems"] == ["manifest unreadable: database disk image is malformed"]


def test_compare_names_each_kind_of_disagreement() -> None:
    docs = {"a": ["a1", "a2"], "b": ["b1"]}
    assert compare(docs, {"a1", "a2", "b1"}, {"a1", "a2", "b1"}, ["a1", "a2", "b1"]) == []
    assert compare(docs, {"a1", "a2", "b1"}, {"a1", "b1", "x"}, ["a1", "a1", "b1", "y"]) == [
        "document a: 1 of 2 chunks missing from Chroma",
        "1 vectors in Chroma belong to no manifest document",
        "document a: 1 of 2 chunks missing from BM25",
        "1 BM25 rows name no published chunk",
        "1 chunk ids appear more than once in BM25",
    ]
