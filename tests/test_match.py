"""Need <-> result matching with the real bundled model on a small set of records written here."""

from __future__ import annotations

import csv
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.errors import BadInputError, NotFoundError
from kb.ingest.pipeline import ingest
from kb.search.match import EXPORT_HEADERS, Filters, Matcher, highlight, same_area, shown_terms, term_overlap
from kb.settings import Settings, get_settings
from tests.utils import guarded_connect as _guarded_connect


def settings_at(home: Path, **extra: Any) -> Settings:
    """Settings for an index outside KB_HOME (module-scoped fixtures cannot monkeypatch the env)."""
    return Settings(**{"home": home, **extra})

RESULTS = [
    {"id": "T-R1", "title": "煤层气井排采煤粉防控技术", "field": "排采", "region": "山西沁水盆地", "trl": 8,
     "description": "针对排采过程中煤粉大量产出、卡泵和埋泵的问题，建立按阶段控制井底流压降速的排采制度，"
                    "配套防卡泵和井筒煤粉携带工艺，使检泵周期延长一倍以上。", "keywords": ["煤粉", "排采制度", "防卡泵"]},
    {"id": "T-R2", "title": "碎软煤层顶板水平井分段压裂", "field": "储层改造", "region": "全国", "trl": 7,
     "description": "在碎软低渗煤层上方的顶板砂泥岩中钻水平井，分段压裂后裂缝向下延伸进入煤层，"
                    "避开软煤难以支撑裂缝的问题，单井产气量比直井提高三倍。", "keywords": ["碎软煤层", "顶板水平井", "分段压裂"]},
    {"id": "T-R3", "title": "低浓度瓦斯细水雾输送与内燃机发电", "field": "瓦斯利用", "region": "山西晋城", "trl": 9,
     "description": "甲烷浓度低于30%的抽采瓦斯经细水雾输送系统阻火抑爆后送入低浓度瓦斯内燃发电机组，"
                    "实现就地发电并网。", "keywords": ["低浓度瓦斯", "细水雾", "瓦斯发电"]},
    {"id": "T-R4", "title": "撬装式煤层气混合冷剂液化装置", "field": "储运液化", "region": "全国", "trl": 6,
     "description": "采用混合冷剂制冷循环的撬装液化装置，日处理气量5万方，可随井组搬迁，"
                    "把零散井的煤层气液化后用槽车运到城镇。", "keywords": ["撬装液化", "混合冷剂", "LNG"]},
    {"id": "T-R5", "title": "煤矿井下长钻孔分段水力压裂增透", "field": "瓦斯抽采", "region": "山西阳泉", "trl": 5,
     "description": "井下定向钻机施工五百米以上顺层长钻孔，采用胶囊封隔器逐段压裂，扩大单孔抽采影响范围。",
     "keywords": ["长钻孔", "水力压裂", "封隔器"]},
    {"id": "T-R6", "title": "煤层气井远程监控与智能排采系统", "field": "排采", "region": "山西沁水县", "trl": 7,
     "description": "井口传感器自动采集套压、液面和冲次，调度中心远程诊断工况并下发排采参数。",
     "keywords": ["远程监控", "智能排采", "工况诊断"]},
]
NEEDS = [
    {"id": "T-N1", "title": "井里老出煤粉，抽水泵隔几天就卡", "field": "排采", "region": "山西沁水县", "trl": 7,
     "description": "我们的直井一提产量就出黑水，煤粉把泵卡死，每个月都要修井检泵，想知道怎么控制出粉、让泵多转些日子。"},
    {"id": "T-N2", "title": "矿上抽出来的瓦斯太稀，只能排空", "field": "瓦斯利用", "region": "山西沁水县", "trl": 8,
     "description": "井下抽采的瓦斯甲烷含量只有百分之十几，不敢进管道也烧不了锅炉，希望能安全地拿来发电。"},
    {"id": "T-N3", "title": "煤太软，压出来的缝撑不住", "field": "储层改造", "region": "山西沁水盆地", "trl": 6,
     "description": "我们区块煤体破碎松软，直井压裂后缝很快闭合，产气量上不去，想找不在软煤里直接压的改造办法。"},
    {"id": "T-N4", "title": "山里零散气井的气运不出去", "field": "储运液化", "region": "山西沁水县", "trl": 7,
     "description": "几口偏远的井离管网几十公里，铺管不划算，希望在井场把气就地处理成方便拉走的形式。"},
]


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index of the records above for the whole module (ingesting is the slow part)."""
    root = tmp_path_factory.mktemp("match")
    _jsonl(root / "corpus" / "results" / "r.jsonl", RESULTS)
    _jsonl(root / "corpus" / "needs" / "n.jsonl", NEEDS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _guarded_connect)
        assert ingest([root / "corpus"], settings_at(root / "kb")).failed == []
    return root / "kb"


@pytest.fixture
def matcher(home: Path) -> Iterator[Matcher]:
    m = Matcher(settings_at(home))
    yield m
    m.close()


@pytest.fixture
def cli_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KB_HOME", str(home))
    get_settings.cache_clear()
    return home


def _ids(res: object) -> list[str]:
    return [m.doc_id for m in res.matches]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("need", "result"), [("T-N1", "T-R1"), ("T-N2", "T-R3"), ("T-N3", "T-R2"), ("T-N4", "T-R4")])
def test_need_to_results_top1(matcher: Matcher, need: str, result: str) -> None:
    res = matcher.match(need_id=need, top_k=3)
    assert _ids(res)[0] == result
    assert res.query.mode == "need" and res.query.target == "result" and res.query.id == need
    assert all(m.kind == "result" for m in res.matches)


@pytest.mark.parametrize(("result", "need"), [("T-R1", "T-N1"), ("T-R3", "T-N2"), ("T-R2", "T-N3")])
def test_result_to_needs_top1(matcher: Matcher, result: str, need: str) -> None:
    res = matcher.match(result_id=result, top_k=2)
    assert _ids(res)[0] == need and res.query.target == "need"


def test_free_text_to_results(matcher: Matcher) -> None:
    assert _ids(matcher.match(text="井下顺层钻孔太短，压裂影响范围小", top_k=1)) == ["T-R5"]


def test_hard_filters(matcher: Matcher) -> None:
    assert set(_ids(matcher.match(need_id="T-N1", top_k=10, filters=Filters(min_trl=8)))) == {"T-R1", "T-R3"}
    assert _ids(matcher.match(need_id="T-N1", top_k=10, filters=Filters(field="排采"))) == ["T-R1", "T-R6"]
    assert _ids(matcher.match(need_id="T-N1", top_k=10, filters=Filters(region="晋城"))) == ["T-R3"]
    assert _ids(matcher.match(text="煤粉", top_k=10, filters=Filters(min_trl=9, field="排采"))) == []
    top = matcher.match(text="煤粉卡泵", top_k=1, filters=Filters(min_trl=8)).matches[0]
    assert top.doc_id == "T-R1"
    assert next(r.text for r in top.reasons if r.type == "trl") == "成果技术就绪度 TRL 8，达到筛选条件要求的 TRL 8"


@pytest.mark.parametrize("kwargs", [{"min_trl": 0}, {"min_trl": 10}, {"field": " "}])
def test_bad_filters_refused(matcher: Matcher, kwargs: dict[str, object]) -> None:
    with pytest.raises(BadInputError):
        matcher.match(need_id="T-N1", filters=Filters(**kwargs))  # type: ignore[arg-type]


def test_bad_requests_refused(matcher: Matcher) -> None:
    with pytest.raises(NotFoundError):
        matcher.match(need_id="N-NOPE")
    with pytest.raises(NotFoundError):
        matcher.match(result_id="T-N1")  # a need id is not a result id
    with pytest.raises(BadInputError):
        matcher.match(need_id="T-N1", text="煤粉")
    with pytest.raises(BadInputError):
        matcher.match(text="？？")


def test_reasons_terms_field_trl_region_score(matcher: Matcher) -> None:
    top = matcher.match(need_id="T-N1", top_k=1).matches[0]
    by = {r.type: r for r in top.reasons}
    assert list(by) == ["terms", "problems", "field", "trl", "region", "score"]
    terms = by["terms"].model_dump()
    assert "煤粉" in terms["terms"] and "煤粉" in by["terms"].text
    assert "<mark>煤粉</mark>" in terms["highlighted"]
    assert by["field"].text == "领域一致：排采"
    assert by["trl"].text == "成果技术就绪度 TRL 8，达到需求要求的 TRL 7（高出 1 级）"
    assert by["trl"].model_dump()["ok"] is True
    assert by["region"].model_dump()["same_area"] is True
    parts = by["score"].model_dump()
    assert parts["score"] == top.score and set(top.parts) == {
        "score", "raw", "z", "lead", "semantic", "title", "description", "problems", "terms", "adjust"}


def test_trl_shortfall_and_other_field_are_explained(matcher: Matcher) -> None:
    res = matcher.match(need_id="T-N4", top_k=6)
    lng = next(m for m in res.matches if m.doc_id == "T-R4")
    trl = next(r for r in lng.reasons if r.type == "trl")
    assert trl.text == "成果技术就绪度 TRL 6，低于需求要求的 TRL 7（差 1 级），需先做中试或现场验证"
    other = next(m for m in res.matches if m.doc_id == "T-R5")
    assert next(r for r in other.reasons if r.type == "field").text == "领域不同：需求属于储运液化，成果属于瓦斯抽采"


def test_pure_helpers() -> None:
    w = {"煤粉": 2.0, "排采": 1.0, "卡泵": 1.0}
    assert term_overlap(frozenset({"煤粉", "排采"}), frozenset({"煤粉", "卡泵"}), w) == pytest.approx(2 / 3)
    assert shown_terms(frozenset({"煤粉", "一个"}), {"煤粉": 3.0, "一个": 3.0}, 100) == ["煤粉"]  # 一个 is everyday Chinese
    assert highlight("防<卡泵>", ["卡泵"]) == "防&lt;<mark>卡泵</mark>&gt;"
    assert same_area("山西沁水县", "山西沁水盆地（郑庄区块）") and not same_area("山西沁水县", "山西阳泉")
    assert same_area("山西沁水县", "山西晋城")  # 沁水 is a county of 晋城 (kb/lang/places.py)


def test_cli_match_json_contract(cli_home: Path) -> None:
    r = CliRunner().invoke(main, ["match", "--need-id", "T-N2", "--top-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"query", "matches", "strong_match"} and out["query"]["id"] == "T-N2"
    m = out["matches"][0]
    assert set(m) >= {"doc_id", "title", "kind", "score", "reasons", "text"}
    assert m["doc_id"] == "T-R3" and all({"type", "text"} <= set(x) for x in m["reasons"])


def test_cli_match_human_and_errors(cli_home: Path) -> None:
    r = CliRunner().invoke(main, ["match", "--text", "瓦斯浓度低 发电", "--top-k", "1", "--region", "晋城"])
    assert r.exit_code == 0 and "1. T-R3 低浓度瓦斯细水雾输送与内燃机发电" in r.stdout and "领域" in r.stdout
    r = CliRunner().invoke(main, ["match", "--need-id", "N-NOPE"])
    assert r.exit_code == 2 and r.stderr.startswith("error: no need with id")
    for args in (["match"], ["match", "--need-id", "T-N1", "--text", "x"], ["match", "--all-needs"],
                 ["match", "--need-id", "T-N1", "--min-trl", "12"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and r.stderr.startswith("error: "), args


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_batch_export(cli_home: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"matches{suffix}"
    r = CliRunner().invoke(main, ["match", "--all-needs", "--top-k", "2", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    if suffix == ".xlsx":
        rows = [list(row) for row in openpyxl.load_workbook(out).active.iter_rows(values_only=True)]
    else:
        with out.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    assert tuple(rows[0]) == EXPORT_HEADERS
    assert len(rows) == 1 + 4 * 2
    first = rows[1]
    assert [first[0], str(first[2]), first[3]] == ["T-N1", "1", "T-R1"] and "煤粉" in first[EXPORT_HEADERS.index("匹配理由")]
    assert [row[0] for row in rows[1:]] == ["T-N1", "T-N1", "T-N2", "T-N2", "T-N3", "T-N3", "T-N4", "T-N4"]


def test_export_refuses_other_formats(cli_home: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["match", "--all-needs", "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "must end in .xlsx or .csv" in r.stderr


def test_calibrated_score_when_one_candidate_stands_out_and_when_none_does(matcher: Matcher) -> None:
    """The score is a probability against the whole pool: a need that names one result's problem gets a strong
    match well ahead of the rest; a request no result addresses gets "no strong match", however its best
    candidate's raw similarity compares."""
    clear = matcher.match(text="排采时煤粉大量产出卡泵埋泵，想控制井底流压降速、防卡泵，延长检泵周期", top_k=3)
    assert clear.strong_match and clear.matches[0].doc_id == "T-R1" and clear.matches[0].strong
    assert clear.matches[0].score >= 0.5 > clear.matches[1].score and not clear.matches[1].strong
    assert clear.matches[0].parts["lead"] > 0 > clear.matches[1].parts["lead"]
    none = matcher.match(text="单位年会想请一个乐队，预算两万元左右", top_k=3)
    assert not none.strong_match and not any(m.strong for m in none.matches)
    assert all(m.score < 0.5 for m in none.matches)


@pytest.mark.slow  # jieba.posseg's own loader: 2.4 s
def test_word_tags_are_jiebas_own_table() -> None:
    """vocab reads jieba's dictionary tags itself (posseg's loader takes seconds); it must give posseg's table."""
    import jieba
    import jieba.posseg

    from kb.search.match.vocab import _word_tags

    assert _word_tags(jieba.dt) == jieba.posseg.POSTokenizer(jieba.dt).word_tag_tab
