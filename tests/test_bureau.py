"""The bureau's market work: experts and teams, match records, new arrivals, unmet needs (hash embedder).

Records are written here; contact details are made-up placeholders, never a real person's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.index.manifest import Manifest
from kb.index.pairs import PairStore, TransitionError, allowed
from kb.ingest.pipeline import ingest
from kb.integrations.webhook import notify_new
from kb.search.match import Matcher
from kb.search.match.alerts import new_arrivals
from kb.search.match.suggest import suggest
from kb.search.match.unmet import UNMET_HEADERS, unmet_needs, write_unmet
from kb.settings import Settings, parse_api_keys
from tests.utils import KEY, make_client

LOW = 0.0  # match scores are calibrated probabilities against the pool; a pool of one or two has no
# reference, so its scores are near 0 (the hash embedder here): every match is sent, the webhook is what is tested
CONTACT = "电话: 0356-0000000; 邮箱: team@example.invalid"
NEEDS = [
    {"id": "B-N1", "title": "井里老出煤粉，抽水泵隔几天就卡", "field": "排采", "region": "山西沁水县", "org": "某开发企业",
     "description": "直井一提产量就出黑水，煤粉把泵卡死，每个月都要修井检泵，想控制出粉让泵多转些日子。"},
    {"id": "B-N2", "title": "果园滴灌用水太多", "field": "现代农业", "region": "山西沁水县", "org": "某合作社",
     "description": "苹果园全靠大水漫灌，想知道怎么按土壤墒情定时定量浇水施肥。"},
]
RESULTS = [
    {"id": "B-R1", "title": "煤层气井排采煤粉防控技术", "field": "排采", "region": "山西沁水盆地", "trl": 8,
     "org": "某高校煤层气团队", "source": "公开论文",
     "description": "针对排采中煤粉产出、卡泵和埋泵，按阶段控制井底流压降速，配套防卡泵和井筒携粉工艺，检泵周期延长一倍。"},
]
EXPERTS = [
    {"id": "B-E1", "kind": "expert", "name": "煤层气排采工程团队", "org": "某大学", "field": "排采", "region": "北京",
     "expertise": "煤层气井排采制度、井底流压控制、煤粉产出与运移、防卡泵工艺与检泵周期延长。",
     "results": ["B-R1"], "电话": "0356-0000000", "邮箱": "team@example.invalid"},
    {"id": "B-E2", "kind": "expert", "name": "低温液化团队", "org": "某研究所", "field": "储运液化", "region": "北京",
     "expertise": "混合冷剂液化流程、撬装液化装置、LNG储罐蒸发气回收。"},
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    _jsonl(corpus / "needs" / "n.jsonl", NEEDS)
    _jsonl(corpus / "results" / "r.jsonl", RESULTS)
    _jsonl(corpus / "experts" / "e.jsonl", EXPERTS)
    assert ingest([corpus], Settings(home=tmp_path / "kb")).failed == []
    return tmp_path / "kb"


def test_expert_ingest_keeps_contact_out_of_text_and_meta(home: Path) -> None:
    m = Manifest(Settings(home=home).manifest_path)
    doc = m.document("B-E1")
    assert doc is not None and doc["kind"] == "expert" and doc["title"] == "煤层气排采工程团队"
    assert "contact" not in doc["meta"] and "电话" not in doc["meta"] and doc["meta"]["results"] == "B-R1"
    assert all("0356" not in c["text"] for c in m.document_chunks("B-E1"))
    assert m.contact("B-E1") == CONTACT  # kept, unmasked, for the record endpoint
    assert m.contact("B-E2") is None
    m.close()


def test_expert_csv_and_xlsx_read_like_jsonl(tmp_path: Path) -> None:
    header = ["id", "name", "org", "field", "expertise", "联系方式"]
    row = ["X-E1", "瓦斯抽采团队", "某学院", "瓦斯抽采", "顺层长钻孔分段压裂增透与抽采达标评价。", "0356-1111111"]
    folder = tmp_path / "experts"
    folder.mkdir()
    (folder / "e.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    wb = openpyxl.Workbook()
    wb.active.append(header)
    wb.active.append(["X-E2", *row[1:]])
    wb.save(folder / "e.xlsx")
    s = Settings(home=tmp_path / "kb")
    assert ingest([folder], s).failed == []
    m = Manifest(s.manifest_path)
    for i in ("X-E1", "X-E2"):
        doc = m.document(i)
        assert doc is not None and doc["kind"] == "expert" and doc["title"] == "瓦斯抽采团队"
        assert m.contact(i) == "联系方式: 0356-1111111" and "联系方式" not in doc["meta"]
    m.close()


def test_need_to_expert_and_back_with_reasons(home: Path) -> None:
    matcher = Matcher(Settings(home=home))
    res = suggest(matcher, mode="need", value="B-N1", to="expert", top_k=2)
    assert [m.doc_id for m in res.matches][0] == "B-E1" and res.query.target == "expert"
    top = res.matches[0]
    types = [r.type for r in top.reasons]
    assert "trl" not in types and "results" in types and top.org == "某大学" and top.rating in ("高", "中", "低")
    assert "B-R1" in next(r for r in top.reasons if r.type == "results").text
    both = suggest(matcher, mode="need", value="B-N1", to="all", top_k=5)
    assert {m.kind for m in both.matches} == {"result", "expert"}
    back = suggest(matcher, mode="expert", value="B-E1", top_k=2)
    assert back.matches[0].doc_id == "B-N1" and back.query.target == "need"
    matcher.close()


def test_contact_absent_from_every_search_ask_match_batch_output(home: Path) -> None:
    client = make_client(home)
    outputs = [
        client.post("/search", json={"query": "煤层气排采工程团队 煤粉"}),
        client.post("/ask", json={"question": "谁研究煤粉产出与防卡泵？"}),
        client.post("/match", json={"need_id": "B-N1", "to": "all"}),
        client.post("/match", json={"expert_id": "B-E1"}),
        client.post("/match", json={"text": "煤粉卡泵", "to": "expert"}),
        client.post("/match/batch", json={"to": "all"}),
        client.post("/match/batch", json={"to": "all"}, headers={"Accept": "text/csv"}),
        client.get("/match/new", params={"since": 0}),
        client.get("/needs/unmet"),
        client.get("/documents", params={"kind": "expert"}),
        client.get("/documents/B-E1"),  # the record endpoint shows contacts only once roles gate it
    ]
    for r in outputs:
        assert r.status_code == 200, r.text
        assert "0356" not in r.text and "example.invalid" not in r.text, r.request.url
    assert "B-E1" in outputs[0].text  # the expert itself is found


def test_pair_transitions_history_and_key_name(home: Path) -> None:
    assert allowed(None, "推荐") and allowed("推荐", "洽谈中") and allowed("洽谈中", "不合适")
    assert allowed("不合适", "推荐") and not allowed("已签约", "已联系") and not allowed("洽谈中", "已联系")
    # the history names the key by the name of its `name:role:key` entry
    client = make_client(home, api_keys=f"desk:bureau:{KEY},other-key")
    h = {"X-API-Key": KEY}
    assert client.post("/pairs", json={"need_id": "B-N1", "cand_id": "B-R1", "status": "推荐"}).status_code == 401
    for status, note in (("推荐", ""), ("已联系", "已电话联系"), ("洽谈中", "约了现场座谈")):
        r = client.post("/pairs", json={"need_id": "B-N1", "cand_id": "B-R1", "status": status, "note": note}, headers=h)
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "洽谈中" and body["by"] == "desk" and body["cand_kind"] == "result"
    assert [c["status"] for c in body["history"]] == ["推荐", "已联系", "洽谈中"]
    assert body["history"][1]["note"] == "已电话联系" and body["history"][0]["at"] <= body["history"][2]["at"]
    r = client.post("/pairs", json={"need_id": "B-N1", "cand_id": "B-R1", "status": "已联系"}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    r = client.post("/pairs", json={"need_id": "B-N1", "cand_id": "B-E2", "status": "推荐"}, headers={"X-API-Key": "other-key"})
    bare = parse_api_keys("other-key")[0].name  # a bare key is named by its hash, stable when the list changes
    assert r.status_code == 200 and r.json()["by"] == bare and bare.startswith("key-")
    assert client.post("/pairs", json={"need_id": "B-R1", "cand_id": "B-N1", "status": "推荐"}, headers=h).status_code == 404
    listed = client.get("/pairs", params={"need_id": "B-N1", "history": "true"}, headers=h).json()["pairs"]
    assert {p["cand_id"] for p in listed} == {"B-R1", "B-E2"} and len(listed[-1]["history"]) >= 1
    summ = client.get("/pairs/summary", headers=h).json()
    assert summ["pairs"] == 2 and summ["by_status"]["洽谈中"] == 1 and summ["by_field"]["排采"]["推荐"] == 1


def test_pairs_survive_a_restart_and_the_cli_reads_them(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(home=home)
    with PairStore(s.market_path) as store:
        store.set_status(need_id="B-N1", cand_id="B-R1", cand_kind="result", status="已联系", by="cli")
        with pytest.raises(TransitionError):
            store.set_status(need_id="B-N1", cand_id="B-R1", cand_kind="result", status="推荐")
    monkeypatch.setenv("KB_HOME", str(home))
    monkeypatch.setenv("KB_URL", "off")
    from kb.settings import get_settings

    get_settings.cache_clear()
    r = CliRunner().invoke(main, ["pair", "--need", "B-N1", "--with", "B-E1", "--status", "洽谈中", "--note", "见面", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["history"][0]["note"] == "见面"
    r = CliRunner().invoke(main, ["pairs", "--json"])
    out = json.loads(r.output)
    assert out["summary"]["by_status"] == {"推荐": 0, "已联系": 1, "洽谈中": 1, "已签约": 0, "不合适": 0}
    assert {(p["need_id"], p["cand_id"], p["status"]) for p in out["pairs"]} == {
        ("B-N1", "B-R1", "已联系"), ("B-N1", "B-E1", "洽谈中")}
    r = CliRunner().invoke(main, ["pair", "--need", "B-N1", "--with", "B-E1", "--status", "推荐"])
    assert r.exit_code != 0 and "不能" in r.stderr


def test_rejected_pair_is_not_suggested_again(home: Path) -> None:
    client = make_client(home)
    h = {"X-API-Key": KEY}
    before = [m["doc_id"] for m in client.post("/match", json={"need_id": "B-N1", "to": "all"}).json()["matches"]]
    assert "B-R1" in before
    assert client.post("/pairs", json={"need_id": "B-N1", "cand_id": "B-R1", "status": "不合适",
                                       "note": "成果单位不接受小批量"}, headers=h).status_code == 200
    after = [m["doc_id"] for m in client.post("/match", json={"need_id": "B-N1", "to": "all"}).json()["matches"]]
    assert after == [i for i in before if i != "B-R1"]
    rows = client.post("/match/batch", json={"need_ids": ["B-N1"], "to": "all"}).json()["results"][0]["matches"]
    assert "B-R1" not in [m["doc_id"] for m in rows]


def test_batch_sheet_carries_status_org_rating_and_filters(home: Path) -> None:
    client = make_client(home)
    client.post("/pairs", json={"need_id": "B-N1", "cand_id": "B-R1", "status": "已联系", "note": "待回复"},
                headers={"X-API-Key": KEY})
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    anonymous = client.post("/match/batch", json={"need_ids": ["B-N1"]})  # statuses are the bureau's
    assert anonymous.status_code == 200 and "已联系" not in anonymous.text and "待回复" not in anonymous.text
    r = client.post("/match/batch", json={"need_ids": ["B-N1"]}, headers={"Accept": xlsx, "X-API-Key": KEY})
    assert r.status_code == 200
    path = home / "sheet.xlsx"
    path.write_bytes(r.content)
    ws = openpyxl.load_workbook(path).active
    rows = [list(x) for x in ws.iter_rows(values_only=True)]
    head = rows[0]
    row = dict(zip(head, rows[1], strict=True))
    assert row["成果编号"] == "B-R1" and row["对接状态"] == "已联系" and row["备注"] == "待回复"
    assert row["成果单位"] == "某高校煤层气团队" and row["需求单位"] == "某开发企业" and row["TRL"] == 8
    assert row["来源"] == "公开论文" and row["评级"] in ("高", "中", "低") and "\n" in row["匹配理由"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == ws.dimensions and ws.column_dimensions["B"].width == 30


class _Receiver(BaseHTTPRequestHandler):
    """A loopback webhook: answers 500 to the first POST, 200 after; keeps every body."""

    bodies: list[dict[str, Any]] = []
    fail_first = True

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        status = 500 if type(self).fail_first and len(type(self).bodies) == 1 else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_new_arrivals_after_a_second_ingest_and_webhook_once(tmp_path: Path, receiver: str) -> None:
    corpus = tmp_path / "corpus"
    _jsonl(corpus / "needs" / "n.jsonl", NEEDS)
    _jsonl(corpus / "experts" / "e.jsonl", EXPERTS[1:])
    s = Settings(home=tmp_path / "kb", webhook_url=receiver, webhook_retries=1)
    assert ingest([corpus], s).failed == []
    since = time.time()
    _jsonl(corpus / "results" / "r.jsonl", RESULTS)  # new: one result
    _jsonl(corpus / "experts" / "e.jsonl", EXPERTS)  # changed file: one new expert, one unchanged
    assert ingest([corpus], s).failed == []
    with PairStore(s.market_path) as store:
        matcher = Matcher(s)
        res = new_arrivals(matcher, store, since, threshold=LOW)
        matcher.close()
    assert sorted(i.doc_id for i in res.items) == ["B-E1", "B-R1"]  # B-E2 and the needs did not change
    threshold = res.threshold
    strong = {(i.doc_id, m.doc_id) for i in res.items for m in i.matches}
    assert all(m.score >= threshold for i in res.items for m in i.matches)
    assert strong  # the hash embedder scores low: a low threshold, so there is something to send
    first = notify_new(s, since, threshold=LOW)
    assert len(_Receiver.bodies) == 2  # a 500, then one retry delivered
    assert _Receiver.bodies[0] == _Receiver.bodies[1] and first == {"sent": len(strong), "pending": 0}
    keys = {n["key"] for n in _Receiver.bodies[1]["notices"]}
    assert keys == {f"{n}|{c}" for c, n in strong}
    again = notify_new(s, since, threshold=LOW)
    assert again == {"sent": 0, "pending": 0} and len(_Receiver.bodies) == 2  # no duplicate notice


def test_unmet_needs_grouped_and_exported(home: Path, tmp_path: Path) -> None:
    s = Settings(home=home)
    matcher = Matcher(s)
    with PairStore(s.market_path) as store:
        res = unmet_needs(matcher, store)
        scores = {n.doc_id: suggest(matcher, mode="need", value=n.doc_id, to="all", top_k=1).matches[0].score
                  for n in matcher.records("need").values()}
    matcher.close()
    unmet = {u.doc_id for items in res.by_field.values() for u in items}
    assert unmet == {i for i, sc in scores.items() if sc < res.threshold} and res.unmet == len(unmet)
    out = tmp_path / "unmet.xlsx"
    write_unmet(out, res)
    ws = openpyxl.load_workbook(out).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == UNMET_HEADERS and {r[1] for r in rows[1:]} == unmet and ws.freeze_panes == "A2"
    client = make_client(home)
    r = client.get("/needs/unmet", headers={"Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert client.get("/needs/unmet").json()["unmet"] == len(unmet)


@pytest.mark.parametrize(("a", "b", "same"), [
    ("山西沁水盆地", "山西晋城", True),  # 沁水 is part of 晋城: the basin spans the city
    ("山西沁水盆地（郑庄区块）", "山西沁水县", True),
    ("山西沁水盆地南部", "山西长治", True),
    ("鄂尔多斯盆地东南缘（陕西延川南）", "山西沁水盆地", False),  # two basins: different geology
    ("山西阳泉", "山西晋城", False),
    ("贵州六盘水", "山西沁水县", False),
])
def test_region_check_uses_the_division_hierarchy(a: str, b: str, same: bool) -> None:
    from kb.search.match import same_area

    assert same_area(a, b) is same and same_area(b, a) is same


def test_only_domain_terms_are_shown_as_shared_terms() -> None:
    from kb.search.match.vocab import domain_term

    assert [w for w in ("便于", "多口", "常规", "孔卡", "频繁", "一个") if domain_term(w)] == []
    assert all(domain_term(w) for w in ("钻具", "煤粉", "煤泥", "修井", "井筒", "压差", "地层", "排采", "瓦斯", "检泵"))


def test_mcp_match_reaches_experts_and_leaves_out_rejected_pairs(home: Path) -> None:
    import asyncio

    from mcp import Client

    from kb.integrations.mcp_server import LocalRunner, build_server
    from kb.models import EVERYTHING

    settings = Settings(home=home)
    with PairStore(settings.market_path) as store:
        store.set_status(need_id="B-N1", cand_id="B-R1", cand_kind="result", status="不合适", note="不接受小批量")
    runner = LocalRunner(settings)

    async def calls() -> tuple[Any, Any, Any]:
        async with Client(build_server(settings, runner, visible=lambda: EVERYTHING)) as client:  # as kb mcp
            return (await client.call_tool("match", {"need_id": "B-N1", "to": "all", "top_k": 5}),
                    await client.call_tool("match", {"expert_id": "B-E1", "top_k": 2}),
                    await client.call_tool("match", {"need_id": "B-N1", "text": "煤粉"}))

    try:
        to_all, from_expert, both = asyncio.run(calls())
    finally:
        runner.close()
    ids = [m["doc_id"] for m in to_all.structured_content["matches"]]
    assert "B-E1" in ids and "B-R1" not in ids  # experts reached, the 不合适 pair left out
    assert from_expert.structured_content["matches"][0]["doc_id"] == "B-N1"
    assert both.is_error and "exactly one of" in both.content[0].text
