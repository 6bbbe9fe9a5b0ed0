"""Metric code on a hand-computed example, relevance matching, and a smoke run of `kb eval`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.evaluation.metrics import Ranked, matches, mrr_at, ndcg_at, rank_hits, recall_at, score


def test_metrics_on_a_hand_computed_example() -> None:
    # two relevant items, found at ranks 2 and 4
    r = Ranked(n_relevant=2, hits_at=[2, 4])
    assert recall_at(r, 1) == 0.0 and recall_at(r, 5) == 1.0 and recall_at(r, 3) == 0.5
    assert mrr_at(r, 10) == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(r, 10) == pytest.approx(expected)
    assert score([r, Ranked(1, [])])["mrr@10"] == 0.25
    # a relevant item first found at rank 14: a ranking miss for @10, found for @20 and @50
    deep = score([Ranked(n_relevant=2, hits_at=[3, 14])])
    assert (deep["recall@10"], deep["recall@20"], deep["recall@50"]) == (0.5, 1.0, 1.0)


def test_rank_hits_looks_deep_enough_for_recall_at_50() -> None:
    hits = [(f"d{i}", "s") for i in range(60)]
    assert rank_hits(hits, ["d44", "d55"]).hits_at == [45]  # d55 is past the 50 units judged


def test_relevance_by_document_or_heading() -> None:
    assert matches("R001", "R001", "任意")
    assert matches("plan#（一）煤层气产业", "plan", "第四章 > 二、突破 > （一）煤层气产业 > 专栏2")
    assert matches("plan#（一） 煤层气产业", "plan", "第四章>（一）煤层气产业")  # whitespace ignored
    assert not matches("plan#（二）装备制造产业", "plan", "第四章 > （一）煤层气产业")


def test_rank_hits_counts_each_unit_once() -> None:
    hits = [("a", "s1"), ("a", "s1"), ("b", "s"), ("c", "s"), ("a", "s2")]
    assert rank_hits(hits, ["c", "a"]).hits_at == [1, 3]


def _tiny_dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "tiny"
    ds.mkdir()
    passages = {
        "p1": "沁水盆地高煤阶煤层渗透率低，多分支水平井可以扩大泄气面积。",
        "p2": "甲烷浓度低于30%的煤矿瓦斯可以用低浓度瓦斯发电机组发电。",
        "p3": "煤层气井排采要控制井底流压缓慢下降，避免煤粉产出。",
        "p4": "Coalbed methane can be liquefied in skid-mounted plants with a mixed refrigerant cycle.",
    }
    queries = [("q1", "多分支水平井有什么好处", "p1"), ("q2", "低浓度瓦斯怎么利用", "p2"),
               ("q3", "排采时井底流压怎么控制", "p3"), ("q4", "small LNG plant for coalbed methane", "p4")]
    (ds / "corpus.jsonl").write_text("".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n"
                                             for k, v in passages.items()), encoding="utf-8")
    (ds / "queries.jsonl").write_text("".join(json.dumps({"id": i, "text": t, "relevant_ids": [r], "type": "t"},
                                                         ensure_ascii=False) + "\n" for i, t, r in queries),
                                      encoding="utf-8")
    return ds


def test_kb_eval_smoke_on_a_tiny_dataset(tmp_path: Path) -> None:
    ds = _tiny_dataset(tmp_path)
    res = CliRunner().invoke(main, ["eval", "--dataset", str(ds), "--json", "-q"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["queries"] == 4 and set(out["methods"]) == {"bm25", "dense", "hybrid", "llamaindex_baseline"}
    assert set(out["methods"]["hybrid"]) == {"recall@1", "recall@5", "recall@10", "recall@20", "recall@50",
                                                  "mrr@10", "ndcg@10"}
    assert out["methods"]["hybrid"]["recall@5"] == 1.0 and out["methods"]["dense"]["recall@1"] == 1.0
    assert out["by_type"]["t"]["hybrid"]["recall@5"] == 1.0


def test_unsearchable_query_scores_zero_instead_of_crashing(tmp_path: Path) -> None:
    ds = tmp_path / "punct"
    ds.mkdir()
    (ds / "corpus.jsonl").write_text('{"id": "p1", "text": "煤层气排采。"}\n', encoding="utf-8")
    (ds / "queries.jsonl").write_text('{"id": "q1", "text": "？？", "relevant_ids": ["p1"]}\n'
                                      '{"id": "q2", "text": "排采", "relevant_ids": ["p1"]}\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["eval", "--dataset", str(ds), "--methods", "bm25,hybrid", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["methods"]["hybrid"]["recall@1"] == 0.5


def test_baseline_scores_an_empty_query_as_no_hits(tmp_path: Path) -> None:
    """cmrc2018 has two empty queries; llama-index's retriever crashed on them (None query vector)."""
    ds = tmp_path / "empty"
    ds.mkdir()
    (ds / "corpus.jsonl").write_text('{"id": "p1", "text": "煤层气排采。"}\n', encoding="utf-8")
    (ds / "queries.jsonl").write_text('{"id": "q1", "text": "", "relevant_ids": ["p1"]}\n'
                                      '{"id": "q2", "text": "排采", "relevant_ids": ["p1"]}\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["eval", "--dataset", str(ds), "--methods", "llamaindex_baseline,hybrid",
                                    "--json", "-q"])
    assert res.exit_code == 0, res.output
    methods = json.loads(res.stdout)["methods"]
    assert methods["llamaindex_baseline"]["recall@1"] == 0.5 and methods["hybrid"]["recall@1"] == 0.5


@pytest.mark.slow  # every ablation variant, each a full evaluation
def test_read_path_variants_run_on_a_tiny_dataset(tmp_path: Path) -> None:
    from eval import ablate

    out = ablate.main(["--dataset", str(_tiny_dataset(tmp_path)), "--variants", ",".join(ablate.VARIANTS)])
    assert set(out["variants"]) == set(ablate.VARIANTS)
    assert out["variants"]["baseline"]["all"]["recall@5"] == 1.0  # the same as `kb eval`'s hybrid above
    assert all(set(v) == {"all", "t"} for v in out["variants"].values())


@pytest.mark.slow  # an ablation variant's CC-CEDICT table, built in the test
def test_chinese_dictionary_words_skip_what_the_glossary_covers() -> None:
    from eval.ablate import zh_dictionary

    words = zh_dictionary("真空粉末绝热罐一般做到多大容积")
    assert "vacuum" in words and "volume" in words and "一般" not in words
