"""Read path on the small bilingual corpus (exact expected documents; the rankings of paraphrases with the real
bundled model), against the embedded store and a Chroma server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import BadFilterError, BadQueryError
from kb.ingest.pipeline import ingest
from kb.search.fuse import dbsf, fuse, minmax
from kb.search.hybrid import Searcher
from kb.settings import Settings


@pytest.fixture
def searcher(store_backend: str, mini_corpus: Path, settings: Settings) -> Searcher:
    assert ingest([mini_corpus], settings).failed == []
    return Searcher(settings)


@pytest.mark.real_model
@pytest.mark.parametrize(
    ("query", "doc_id"),
    [
        ("多分支水平井", "horizontal"),
        ("怎样避免排水降压时煤粉出来", "dewatering"),
        ("甲烷浓度很低的矿井气能发电吗", "gas_use"),
        ("skid-mounted liquefaction of coalbed methane", "lng_en"),
        # Chinese words whose only match is the English document (ranked 5th+ before the glossary translation)
        ("撬装液化装置", "lng_en"),
    ],
)
def test_top_hit(searcher: Searcher, query: str, doc_id: str) -> None:
    assert searcher.search(query, top_k=3).hits[0].doc_id == doc_id


def test_hit_fields_and_highlight(searcher: Searcher) -> None:
    hit = searcher.search("U型井 直井", top_k=1).hits[0]
    assert (hit.doc_id, hit.kind, hit.source, hit.page) == ("horizontal", "document", "horizontal.md", None)
    assert hit.section == "煤层气水平井技术 > 2.U型井"
    assert "<mark>直井</mark>" in hit.highlighted


def test_bm25_only_drops_zero_score_hits(searcher: Searcher) -> None:
    hits = searcher.search("蓄热氧化", top_k=10, method="bm25").hits
    assert [h.doc_id for h in hits] == ["gas_use"] or all(h.bm25_score and h.bm25_score > 0 for h in hits)
    assert searcher.search("xyzzy", top_k=10, method="bm25").hits == []


def test_filters_restrict_hits(searcher: Searcher) -> None:
    hits = searcher.search("煤层气", top_k=10, filters={"source": "gas_use.md"}).hits
    assert {h.doc_id for h in hits} == {"gas_use"}
    hits = searcher.search("煤层气", top_k=10, filters={"section": "煤层气水平井技术 > 2."}).hits
    assert hits and all(h.section.startswith("煤层气水平井技术 > 2.") for h in hits)


@pytest.mark.parametrize(
    "filters",
    [{"color": "red"}, {"kind": {"$ne": "plan"}}, {"source": "$where"}, {"kind": "novel"}, {"year": "2023 OR 1"}],
)
def test_bad_filters_are_refused(searcher: Searcher, filters: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadFilterError):
        searcher.search("煤层气", filters=filters)


@pytest.mark.parametrize("query", ["", "   ", "。，！？……"])
def test_empty_queries_are_refused(searcher: Searcher, query: str) -> None:
    with pytest.raises(BadQueryError):
        searcher.search(query)


def test_very_long_query_is_cut_not_crashing(searcher: Searcher) -> None:
    assert searcher.search("煤层气排采" * 2000, top_k=2).hits


def test_fusion_is_weighted_and_normalised() -> None:
    assert minmax([("a", 0.9), ("b", 0.8), ("c", 0.7)]) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})
    fused = fuse({"dense": [("a", 0.9), ("b", 0.8)], "bm25": [("b", 12.0), ("c", 3.0)]}, {"dense": 0.6, "bm25": 0.4})
    assert [f.id for f in fused] == ["a", "b", "c"]
    assert fused[1] == ("b", pytest.approx(0.4), {"dense": 0.8, "bm25": 12.0})


def test_fusion_takes_any_number_of_named_lists() -> None:
    lists = {"dense": [("a", 0.9), ("b", 0.5)], "bm25": [("b", 7.0), ("c", 1.0)], "third": [("c", 2.0), ("a", 1.0)]}
    fused = fuse(lists, {"dense": 0.5, "bm25": 0.3, "third": 0.2})
    # min-max per list: a = 0.5*1 + 0.2*0 = 0.5, b = 0.5*0 + 0.3*1 = 0.3, c = 0.3*0 + 0.2*1 = 0.2
    assert [(f.id, round(f.score, 6)) for f in fused] == [("a", 0.5), ("b", 0.3), ("c", 0.2)]
    assert fused[2].parts == {"bm25": 1.0, "third": 2.0}
    rrf = fuse({"x": [("a", 9.0), ("b", 1.0)], "y": [("b", 3.0)]}, {"x": 1.0, "y": 1.0}, "rrf")
    assert rrf[0].id == "b" and rrf[0].score == pytest.approx(1 / 62 + 1 / 61)
    with pytest.raises(ValueError, match="no fusion weight"):
        fuse({"x": []}, {})
    with pytest.raises(ValueError, match="valid: relative, dbsf, rrf"):
        fuse({"x": []}, {"x": 1.0}, "max")


def test_distribution_scaling_lets_an_outlier_count_above_one() -> None:
    # mean 2, sd 4 over (10, 0, 0, 0, 0): the window mean +- 3 sd is [-10, 14]
    scaled = dbsf([("a", 10.0), ("b", 0.0), ("c", 0.0), ("d", 0.0), ("e", 0.0)])
    assert scaled == pytest.approx({"a": 20 / 24, "b": 10 / 24, "c": 10 / 24, "d": 10 / 24, "e": 10 / 24})
    assert dbsf([("a", 1.0), ("b", 1.0)]) == {"a": 1.0, "b": 1.0}
    lists = {"dense": [("a", 0.9), ("b", 0.8)], "bm25": [("b", 12.0), ("c", 3.0)]}
    assert fuse(lists, {"dense": 0.5, "bm25": 0.5}, "dbsf")[0].id == "b"


def test_fusion_setting_reaches_the_searcher(searcher: Searcher, settings: Settings) -> None:
    q = "怎样避免排水降压时煤粉出来"
    plain = searcher.search(q, top_k=5).hits
    for method in ("dbsf", "rrf"):
        other = Searcher(settings.model_copy(update={"fusion": method})).search(q, top_k=5).hits
        assert other[0].doc_id == "dewatering"  # the same best document, by another scaling
        assert [h.score for h in other] != [h.score for h in plain], method


def test_doc_id_filter_works_on_both_retrievers(searcher: Searcher) -> None:
    for method in ("dense", "bm25", "hybrid"):
        hits = searcher.search("煤层气 排采", top_k=5, filters={"doc_id": "dewatering"}, method=method).hits
        assert hits and {h.doc_id for h in hits} == {"dewatering"}, method
