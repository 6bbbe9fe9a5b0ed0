"""Needs and results by form (POST/PUT/GET /records): per-field Chinese errors, create, edit with the earlier
version kept, and a record typed in found by search and matching like one read from a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kb.ingest.forms import FORMS
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import KEY, make_client, write_market_corpus

NEED = {"kind": "need", "title": "矿区道路扬尘监测", "field": "节能环保", "org": "某煤矿（沁水）", "region": "山西沁水县",
        "description": "运煤道路扬尘大，村民投诉多，希望沿路布设监测点，超标时自动喷淋降尘并留存数据。",
        "trl": "6", "keywords": "扬尘监测，喷淋降尘"}


@pytest.fixture
def client(kb_home: Path, tmp_path: Path) -> Iterator[TestClient]:
    assert ingest([write_market_corpus(tmp_path / "corpus")], Settings(home=kb_home)).failed == []
    with make_client(kb_home, api_keys=f"editor:admin:{KEY}") as c:
        c.headers["X-API-Key"] = KEY
        yield c


def test_a_wrong_form_names_each_field_in_chinese(client: TestClient) -> None:
    bad = {**NEED, "title": " ", "description": "", "trl": "12", "field": "炼钢", "visibility": "保密", "colour": "红",
           "id": "N 1/2"}
    resp = client.post("/records", json=bad)
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "invalid_record"
    assert err["fields"] == {
        "colour": "没有这个字段",
        "id": "编号只能用字母、数字和 - _ .，以字母或数字开头，至多 64 个字符",
        "title": "请填写需求名称",
        "description": "请填写需求描述",
        "field": "领域须从列表中选择：煤层气开发、煤层气钻完井、储层改造、排采、勘探监测、瓦斯抽采、瓦斯利用、储运液化、煤层气化工、"
                 "装备制造、智能煤矿、新材料、新能源、节能环保、现代农业",
        "trl": "技术成熟度须为 1 到 9 的整数",
        "visibility": "可见范围须为“公开”或“内部”",
    }
    assert client.post("/records", json={**NEED, "kind": "paper"}).json()["error"]["fields"] == {
        "kind": "类型须为 need 或 result 或 expert"}
    assert client.post("/records", json={**NEED, "trl": "0"}).json()["error"]["fields"] == {
        "trl": "技术成熟度须为 1 到 9 的整数"}


def test_a_need_typed_in_is_searched_and_matched(client: TestClient) -> None:
    resp = client.post("/records", json=NEED)
    assert resp.status_code == 201, resp.text
    saved = resp.json()
    doc_id = saved["doc_id"]
    assert doc_id.startswith("N-") and saved["changed"] and saved["version"] is None
    shown = client.get(f"/records/{doc_id}").json()
    assert (shown["kind"], shown["title"], shown["description"], shown["visibility"]) == (
        "need", NEED["title"], NEED["description"], "public")
    assert shown["meta"] == {"field": "节能环保", "org": "某煤矿（沁水）", "region": "山西沁水县", "trl": 6,
                             "keywords": "扬尘监测,喷淋降尘"}
    hits = client.post("/search", json={"query": "运煤道路扬尘喷淋", "top_k": 3}).json()["hits"]
    assert hits[0]["doc_id"] == doc_id
    match = client.post("/match", json={"need_id": doc_id, "top_k": 3}).json()
    assert match["query"]["title"] == NEED["title"] and len(match["matches"]) == 3
    listed = client.get("/documents", params={"kind": "need", "limit": 50}).json()["items"]
    assert [d["source"] for d in listed if d["doc_id"] == doc_id] == ["表单录入"]
    again = client.post("/records", json={**NEED, "id": doc_id})
    assert again.status_code == 409 and again.json()["error"]["code"] == "record_exists"


def test_an_edit_replaces_the_text_and_keeps_the_earlier_version(client: TestClient) -> None:
    doc_id = client.post("/records", json={**NEED, "id": "N-DUST-1"}).json()["doc_id"]
    edited = {**NEED, "title": "矿区道路扬尘与噪声监测", "description": "运煤道路夜间噪声扰民，需要噪声在线监测和限速提示。",
              "visibility": "内部"}
    resp = client.put(f"/records/{doc_id}", json=edited)
    assert resp.status_code == 200 and resp.json() == {"doc_id": "N-DUST-1", "kind": "need", "changed": True,
                                                       "version": 1}
    now = client.get(f"/records/{doc_id}").json()
    assert (now["title"], now["description"], now["visibility"]) == (edited["title"], edited["description"], "internal")
    texts = [p["text"] for p in client.get(f"/documents/{doc_id}").json()["passages"]]
    assert texts == [edited["description"] + "关键词：扬尘监测,喷淋降尘"]  # the old passages are gone
    versions = client.get(f"/records/{doc_id}/versions").json()
    assert [(v["version"], v["title"], v["description"], v["visibility"], v["replaced_by"]) for v in versions] == [
        (1, NEED["title"], NEED["description"], "public", "editor")]
    unchanged = client.put(f"/records/{doc_id}", json={k: v for k, v in edited.items() if k != "visibility"}).json()
    assert (unchanged["changed"], unchanged["version"]) == (False, None)
    assert len(client.get(f"/records/{doc_id}/versions").json()) == 1  # left out, visibility stayed internal
    assert client.put("/records/N-NOPE", json=NEED).status_code == 404


def test_editing_a_record_from_a_file_keeps_its_file(client: TestClient) -> None:
    old = client.get("/records/R101").json()
    form: dict[str, Any] = {**old["meta"], "title": old["title"], "description": old["description"] + "已在沁水县推广。"}
    assert client.put("/records/R101", json=form).json()["version"] == 1
    doc = client.get("/documents/R101").json()
    assert doc["source"] == "records.jsonl" and "已在沁水县推广" in doc["passages"][-1]["text"]


def test_the_form_schema_is_the_page_s_form(client: TestClient) -> None:
    """The page draws its form from GET /record-form: one entry per kind in FORMS."""
    form = client.get("/record-form", params={"kind": "result"}).json()
    assert [f["name"] for f in form["fields"]] == [f.name for f in FORMS["result"]]
    by_name = {f["name"]: f for f in form["fields"]}
    assert by_name["title"]["label"] == "成果名称" and by_name["title"]["required"]
    assert by_name["visibility"]["choices"] == ["公开", "内部"] and "瓦斯抽采" in by_name["field"]["choices"]
    assert client.get("/record-form", params={"kind": "paper"}).status_code == 422
