"""Compaction (issue 19): Chroma keeps deleted vectors in its index; `kb check` reports them, `--repair` and the API
rebuild the store from the live vectors, crash-safely, and searches keep working across it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import main as cli
from kb.index.compact import Bloat, compact, hnsw_count, measure, needs_compaction
from kb.index.indexes import open_indexes
from kb.index.vectors import active_name, client_for, collection_for, open_collection
from kb.ingest.pipeline import delete, ingest
from kb.search.hybrid import Searcher
from kb.settings import Settings
from tests.utils import KEY, MINI_DOCS, make_client, write_docs

LINE = "沁水盆地高煤阶煤层渗透率低，多分支水平井可以扩大泄气面积。樊庄区块应用多分支水平井后单井日产气量明显提高。"


@pytest.fixture
def mostly_deleted(tmp_path: Path, settings: Settings) -> Settings:
    """The mini corpus (4 documents) plus a 200-passage document, then the big one deleted."""
    corpus = write_docs(tmp_path / "corpus", MINI_DOCS)
    (corpus / "big.md").write_text("# 大文件\n\n" + "\n".join(f"大{n:04d}{LINE}" for n in range(750)), encoding="utf-8")
    assert ingest([corpus], settings).failed == []
    assert delete("big", settings) == 188
    return settings


def _bloat(s: Settings) -> Bloat:
    ix = open_indexes(s)
    try:
        return measure(ix)
    finally:
        ix.close()


def _check(*extra: str) -> tuple[int, dict[str, object]]:
    r = CliRunner().invoke(cli, ["check", "--json", *extra])
    return r.exit_code, json.loads(r.stdout)


def test_the_threshold() -> None:
    assert needs_compaction(Bloat(stored=1000, live=400), 0.5) and not needs_compaction(Bloat(1000, 600), 0.5)
    assert not needs_compaction(Bloat(stored=100, live=40), 0.5)  # 60 dead: under MIN_DEAD, never worth it
    assert Bloat(stored=10, live=12).dead == 0


def test_check_reports_bloat_and_repair_compacts(mostly_deleted: Settings) -> None:
    s = mostly_deleted
    before = _bloat(s)
    assert before == Bloat(stored=193, live=5)  # 188 deleted
    code, rep = _check()
    assert code == 1 and rep["stored"] == before.stored and rep["vectors"] == 5
    assert rep["problems"] == [f"Chroma stores {before.stored} vectors for 5 live ones ({before.share:.0%} deleted, "
                               "KB_COMPACT_SHARE); kb check --repair compacts it"]
    code, rep = _check("--repair")
    assert code == 0 and rep["ok"] and rep["problems"] == []
    assert rep["repaired"] == [f"compacted the vector store: 5 live vectors kept, {before.dead} deleted ones dropped "
                               f"(stored {before.stored} -> {rep['stored']})"]
    assert rep["stored"] == 5 and active_name(s) == "kb_chunks.c1"
    assert [c.name for c in client_for(s.chroma_dir).list_collections()] == ["kb_chunks.c1"]  # the old one is gone
    searcher = Searcher(s)
    try:  # every passage is still found by its vector, with its metadata
        hits = searcher.search("多分支水平井 泄气面积", top_k=1, method="dense").hits
        assert hits[0].doc_id == "horizontal" and hits[0].section
    finally:
        searcher.close()


def test_a_compaction_the_crash_left_half_done_is_cleaned_up(mostly_deleted: Settings) -> None:
    s = mostly_deleted
    partial = open_collection(s.chroma_dir, "", "kb_chunks.c1")  # a copy the crash cut short: the pointer never moved
    partial.upsert(ids=["x"], embeddings=[[0.1] * 256])
    assert active_name(s) == "kb_chunks" and collection_for(s).count() == 5  # readers still use the original
    ix = open_indexes(s)
    try:
        compact(ix)
    finally:
        ix.close()
    assert active_name(s) == "kb_chunks.c1" and collection_for(s).count() == 5
    assert "x" not in set(collection_for(s).get(include=[])["ids"])
    code, rep = _check()
    assert code == 0 and rep["ok"]


def test_hnsw_count_reads_chromas_index_header(settings: Settings, tmp_path: Path) -> None:
    """A store whose deletes came before we counted them: what Chroma's index file holds shows them."""
    col = collection_for(settings)
    col.upsert(ids=[f"v{i}" for i in range(1500)], embeddings=[[float(i % 7), 1.0] + [0.0] * 254 for i in range(1500)])
    col.delete(ids=[f"v{i}" for i in range(1400)])
    col.upsert(ids=["w"], embeddings=[[1.0] * 256])  # Chroma writes its index file every 1000 changes
    segments = [p for p in settings.chroma_dir.iterdir() if (p / "header.bin").exists()]
    assert [hnsw_count(p) for p in segments] == [1500]
    assert _bloat(settings) == Bloat(stored=1500, live=101)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "header.bin").write_bytes(b"\x01" * 100)
    (odd / "data_level0.bin").write_bytes(b"\x00" * 10)
    assert hnsw_count(odd) is None  # another layout reads as unknown, never as a wrong number


def test_the_api_compacts_after_a_delete_and_searches_go_on(tmp_path: Path, kb_home: Path) -> None:
    corpus = write_docs(tmp_path / "corpus", MINI_DOCS)
    (corpus / "big.md").write_text("# 大文件\n\n" + "\n".join(f"大{n:04d}{LINE}" for n in range(750)), encoding="utf-8")
    s = Settings(home=kb_home)
    ingest([corpus], s)
    with make_client(kb_home) as c:
        c.headers["X-API-Key"] = KEY
        assert c.post("/search", json={"query": "U型井 直井", "method": "dense"}).json()["hits"]  # the searcher is open
        assert c.delete("/documents/big").status_code == 200
        c.app.state.jobs.close()  # the compaction queued after the delete has run
        hits = c.post("/search", json={"query": "U型井 直井", "top_k": 1, "method": "dense"}).json()["hits"]
        assert hits[0]["doc_id"] == "horizontal"
    assert active_name(s) == "kb_chunks.c1" and _bloat(s).live == 5 and _bloat(s).dead == 0


def test_kb_delete_compacts_when_it_leaves_the_store_mostly_deleted(tmp_path: Path, settings: Settings) -> None:
    corpus = write_docs(tmp_path / "corpus", MINI_DOCS)
    (corpus / "big.md").write_text("# 大文件\n\n" + "\n".join(f"大{n:04d}{LINE}" for n in range(750)), encoding="utf-8")
    ingest([corpus], settings)
    r = CliRunner().invoke(cli, ["delete", "big"])
    assert r.exit_code == 0 and r.stdout.splitlines() == [
        "deleted big (188 chunks)",
        "compacted the vector store: 5 live vectors kept, 188 deleted ones dropped (stored 193 -> 5)"]
    assert active_name(settings) == "kb_chunks.c1"
