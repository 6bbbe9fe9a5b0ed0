"""Dify's external knowledge API, driven by a client written from Dify's spec (tests/dify_client.py).

Every field of the request and the answer, every error code (1001, 1002, 2001), the registration
probe, both paths, every comparison operator over our metadata, and the API's key rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kb.integrations.dify import holds_one, relevance
from kb.models import SearchHit
from tests.dify_client import DifyClient
from tests.utils import INTEGRATION_NEEDS, INTEGRATION_RESULTS, KEY, integration_home, make_client

RESULTS = {r["id"] for r in INTEGRATION_RESULTS}
MINI = {"horizontal", "dewatering", "gas_use", "lng_en"}
EVERYTHING = RESULTS | MINI | {r["id"] for r in INTEGRATION_NEEDS}
Q = "煤层气"  # every document has it, and the corpus is smaller than the search depth: every chunk is a hit


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return integration_home(tmp_path_factory.mktemp("dify"))


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    """One app for the tests that only read with the right key (starting an app was most of such a test)."""
    with make_client(home) as c:
        yield c


@pytest.fixture
def own_client(home: Path) -> Iterator[TestClient]:
    """An app of its own, for a test that sends wrong keys (the app counts them per address)."""
    with make_client(home) as c:
        yield c


@pytest.fixture
def dify(client: TestClient) -> DifyClient:
    return DifyClient(client, "http://testserver/dify", KEY)


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {r["metadata"]["doc_id"] for r in records}


def _error(resp: Any, status: int, code: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "error_msg"} and body["error_code"] == code
    return str(body["error_msg"])


# ---- registration and auth -------------------------------------------------------------------------------

def test_registration_probe_is_accepted_with_a_good_key_and_refused_with_a_bad_one(own_client: TestClient) -> None:
    client = own_client
    assert DifyClient(client, "http://testserver/dify", KEY).check_endpoint() is None
    assert DifyClient(client, "http://testserver", KEY).check_endpoint() is None  # POST /retrieval too
    resp = client.post("/dify/retrieval", headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 200 and resp.json() == {"records": []}
    assert DifyClient(client, "http://testserver/dify", "wrong").check_endpoint() == "Forbidden: Authorization failed"
    assert DifyClient(client, "http://testserver/nowhere", KEY).check_endpoint() == "Not Found"


def test_auth_error_codes(own_client: TestClient, home: Path) -> None:
    dify = DifyClient(own_client, "http://testserver/dify", KEY)
    good = {"Content-Type": "application/json"}
    for header in ("Basic abc", "Bearer", "Bearer   ", KEY):
        msg = _error(dify.request("all", Q, 3, 0.0, headers={**good, "Authorization": header}), 403, 1001)
        assert "Bearer" in msg
    _error(dify.request("all", Q, 3, 0.0, headers={**good, "Authorization": "Bearer wrong"}), 403, 1002)
    _error(dify.request("all", Q, 3, 0.0, headers={**good, "X-API-Key": "wrong"}), 403, 1002)
    # public reads (the default): no header at all is fine, as for POST /search
    assert dify.request("all", Q, 3, 0.0, headers=good).status_code == 200
    with make_client(home, public_read=False) as private:
        c = DifyClient(private, "http://testserver/dify", KEY)
        _error(c.request("all", Q, 3, 0.0, headers=good), 403, 1001)
        assert c.request("all", Q, 3, 0.0).status_code == 200
        assert c.request("all", Q, 3, 0.0, headers={**good, "X-API-Key": KEY}).status_code == 200
        assert DifyClient(private, "http://testserver/dify", "nope").records("all", Q) == []


def test_a_read_only_server_without_keys_takes_any_bearer(home: Path) -> None:
    with make_client(home, api_keys="", allow_writes=False) as c:
        assert DifyClient(c, "http://testserver/dify", "anything").records("all", Q, top_k=2)


def test_rate_limit_answers_in_difys_shape(home: Path) -> None:
    with make_client(home, rate_limit=1) as c:
        d = DifyClient(c, "http://testserver/dify", KEY)
        assert d.request("all", Q, 1, 0.0).status_code == 200
        resp = d.request("all", Q, 1, 0.0)
        _error(resp, 429, 429)
        assert int(resp.headers["retry-after"]) >= 1


# ---- request and answer fields --------------------------------------------------------------------------

def test_records_have_exactly_difys_fields(dify: DifyClient) -> None:
    records = dify.records("all", "撬装式煤层气液化装置", top_k=3)
    assert len(records) == 3
    for r in records:
        assert set(r) == {"content", "score", "title", "metadata"}
        assert isinstance(r["content"], str) and r["content"] and isinstance(r["title"], str)
        assert isinstance(r["metadata"], dict) and None not in r["metadata"].values()
        assert 0.0 <= r["score"] <= 1.0
    assert [r["score"] for r in records] == sorted((r["score"] for r in records), reverse=True)
    top = records[0]
    assert top["title"] == "撬装式煤层气液化装置" and "撬装混合冷剂循环液化" in top["content"]
    assert {k: top["metadata"][k] for k in ("doc_id", "kind", "source", "field", "region", "trl", "year", "org")} == {
        "doc_id": "R901", "kind": "result", "source": "results.jsonl", "field": "储运液化", "region": "山西沁水县",
        "trl": 7, "year": "2021", "org": "某装备制造企业"}
    assert "page" not in top["metadata"]  # no nulls: a passage without a page has no page key


def test_both_paths_answer_the_same(client: TestClient) -> None:
    a = DifyClient(client, "http://testserver/dify", KEY).records("all", "排采井底流压", top_k=4)
    b = DifyClient(client, "http://testserver", KEY).records("all", "排采井底流压", top_k=4)
    assert a == b and len(a) == 4


def test_top_k_and_score_threshold(dify: DifyClient) -> None:
    every = dify.records("all", "低浓度瓦斯发电", top_k=100)
    assert len(every) > 5 and _ids(every) == EVERYTHING
    assert dify.records("all", "低浓度瓦斯发电", top_k=2) == every[:2]
    cut = every[len(every) // 2]["score"]
    kept = dify.records("all", "低浓度瓦斯发电", top_k=100, score_threshold=cut)
    assert kept == [r for r in every if r["score"] >= cut] and 0 < len(kept) < len(every)
    assert dify.records("all", "低浓度瓦斯发电", top_k=100, score_threshold=1.0) == [r for r in every if r["score"] >= 1.0]


def test_knowledge_ids_are_all_and_one_per_kind(dify: DifyClient) -> None:
    assert _ids(dify.records("result", Q, top_k=100)) == RESULTS
    assert _ids(dify.records("need", Q, top_k=100)) == {"N901"}
    assert _ids(dify.records("document", Q, top_k=100)) == MINI
    assert dify.records("paper", Q, top_k=100) == []
    msg = _error(dify.request("papers-2024", Q, 3, 0.0), 404, 2001)
    assert "papers-2024" in msg and "result" in msg


@pytest.mark.parametrize(("body", "status"), [
    ('{"knowledge_id": "all"}', 400),  # no query
    ('{"knowledge_id": "all", "query": "。。"}', 400),  # no word in it
    ('{"knowledge_id": "all", "query": "煤层气", "retrieval_setting": {"top_k": 0, "score_threshold": 0}}', 400),
    ('{"knowledge_id": "all", "query": "煤层气", "retrieval_setting": {"top_k": 3, "score_threshold": 1.5}}', 400),
    ('{"knowledge_id": "all", "query": "煤层气", "metadata_condition": {"conditions": [{"name": "trl", "comparison_operator": "~"}]}}', 400),
    ("{not json", 400),
    (b"\xff\xfe\n\x80\x16E", 400),  # not text at all: FastAPI's own 400, in Dify's shape (found by Schemathesis)
    ('{"knowledge_id": "all", "query": "煤层气", "retrieval_setting": {"top_k": true}}', 400),
    ('{"knowledge_id": "all", "query": "煤层气", "metadata_condition": {"conditions": [{"name": "trl", "comparison_operator": "=", "value": false}]}}', 400),
])
def test_bad_bodies_are_400_in_difys_shape(client: TestClient, body: str | bytes, status: int) -> None:
    resp = client.post("/dify/retrieval", content=body, headers={"Content-Type": "application/json"})
    _error(resp, status, status)


def test_threshold_null_means_disabled(client: TestClient) -> None:
    body = '{"knowledge_id": "need", "query": "排采", "retrieval_setting": {"top_k": 5, "score_threshold": null}}'
    resp = client.post("/retrieval", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and _ids(resp.json()["records"]) == {"N901"}


# ---- metadata_condition: every operator over our metadata ------------------------------------------------

def _cond(name: Any, op: str, value: Any = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "comparison_operator": op}
    if value is not None:
        c["value"] = value
    return c


@pytest.mark.parametrize(("knowledge", "condition", "expected"), [
    ("all", _cond("region", "contains", "沁水"), {"R901", "R904", "N901"}),
    ("result", _cond("region", "not contains", "沁水"), {"R902", "R903", "R905"}),
    ("all", _cond("field", "start with", "储运"), {"R901", "R902"}),
    ("all", _cond("region", "end with", "晋城"), {"R903"}),
    ("all", _cond("field", "is", "瓦斯利用"), {"R903"}),
    ("result", _cond("field", "is not", "储运液化"), {"R903", "R904", "R905"}),
    ("all", _cond("field", "in", ["排采", "钻完井"]), {"R904", "R905", "N901"}),
    ("all", _cond("field", "in", "排采，钻完井"), {"R904", "R905", "N901"}),
    ("result", _cond("field", "not in", ["排采", "钻完井"]), {"R901", "R902", "R903"}),
    ("result", _cond("year", "empty"), {"R905"}),
    ("result", _cond("year", "not empty"), {"R901", "R902", "R903", "R904"}),
    ("result", _cond("year", "null"), {"R905"}),
    ("result", _cond("year", "not null"), {"R901", "R902", "R903", "R904"}),
    ("all", _cond("trl", "=", 9), {"R905"}),
    ("result", _cond("trl", "≠", "9"), {"R901", "R902", "R903", "R904"}),
    ("all", _cond("trl", ">", 7), {"R903", "R905"}),
    ("all", _cond("trl", "<", 6), {"R902"}),
    ("all", _cond("trl", "≥", 8), {"R903", "R905"}),
    ("all", _cond("trl", "≤", 5), {"R902"}),
    ("all", _cond("trl", ">=", "8"), {"R903", "R905"}),
    ("all", _cond("year", "before", "2020"), {"R902"}),
    ("all", _cond("year", "before", 1577836800), {"R902"}),  # a Unix timestamp: 2020-01-01
    ("all", _cond("year", "after", "2021-06-30"), {"R903", "N901"}),
    ("all", _cond("kind", "is", "need"), {"N901"}),
    ("all", _cond("source", "is", "results.jsonl"), RESULTS),
    ("all", _cond("source", "end with", ".md"), MINI),
    ("all", _cond(["field", "region"], "contains", "沁水"), {"R901", "R904", "N901"}),  # a list: any of the names
    ("all", _cond(["org"], "contains", "高校"), {"R902"}),
    ("result", _cond("author", "empty"), RESULTS),  # a name we do not have is empty
    ("result", _cond("author", "contains", "张"), set()),
])
def test_every_comparison_operator(dify: DifyClient, knowledge: str, condition: dict[str, Any], expected: set[str]) -> None:
    records = dify.records(knowledge, Q, top_k=100, metadata_condition={"logical_operator": "and", "conditions": [condition]})
    assert _ids(records) == expected


def test_and_or_and_default_and(dify: DifyClient) -> None:
    both = [_cond("field", "is", "储运液化"), _cond("trl", "≥", 7)]
    either = [_cond("field", "is", "瓦斯利用"), _cond("trl", "≥", 9)]
    assert _ids(dify.records("all", Q, 100, metadata_condition={"logical_operator": "and", "conditions": both})) == {"R901"}
    assert _ids(dify.records("all", Q, 100, metadata_condition={"conditions": both})) == {"R901"}
    assert _ids(dify.records("all", Q, 100, metadata_condition={"logical_operator": "or", "conditions": either})) == {"R903", "R905"}
    assert _ids(dify.records("all", Q, 100, metadata_condition={"logical_operator": "and", "conditions": []})) == EVERYTHING


def test_conditions_the_search_applies_give_what_checking_the_hits_gives(dify: DifyClient) -> None:
    """``field is X`` under "and" narrows the search itself; under "or" with a never-true partner it cannot.

    The same records either way; their scores differ while fusion scales scores by the candidates found
    (KB_FUSION=relative), which a narrower search changes.
    """
    never = _cond("trl", ">", 100)
    for field in ("储运液化", "排采", "没有的领域"):
        pushed = dify.records("all", Q, 100, metadata_condition={"conditions": [_cond("field", "is", field)]})
        checked = dify.records("all", Q, 100, metadata_condition={"logical_operator": "or",
                                                                   "conditions": [_cond("field", "is", field), never]})
        assert _ids(pushed) == _ids(checked) and {r["content"] for r in pushed} == {r["content"] for r in checked}
    assert _ids(dify.records("result", Q, 100, metadata_condition={"conditions": [_cond("kind", "is", "need")]})) == set()


def test_a_selective_condition_still_fills_top_k(dify: DifyClient) -> None:
    """Hits failing the condition are dropped after the search, so it searches deeper than top_k."""
    records = dify.records("all", "低浓度瓦斯发电", top_k=1, metadata_condition={"conditions": [_cond("trl", "≥", 9)]})
    assert _ids(records) == {"R905"}


# ---- the pure parts ---------------------------------------------------------------------------------------

def test_holds_one_on_missing_values_and_types() -> None:
    assert holds_one("not contains", None, "x") and holds_one("is not", "", "x") and holds_one("not in", None, ["x"])
    assert not holds_one("contains", None, "x") and not holds_one(">", None, 1) and not holds_one("≠", None, 1)
    assert holds_one("is", 7, "7") and holds_one("=", "7", 7.0) and not holds_one(">", "seven", 1)
    assert holds_one("contains", "LNG Plant", "lng") and not holds_one("is", "LNG", "lng")
    assert holds_one("after", "2021-03-01", "2021") and not holds_one("before", "2021", "2021")


def test_relevance_is_the_score_within_0_and_1() -> None:
    hit = SearchHit(id="c", doc_id="d", score=0.73, text="t", title="t", kind="document", source="s", section="", page=None)
    assert relevance(hit) == 0.73
    assert relevance(hit.model_copy(update={"score": 1.0000001})) == 1.0
    assert relevance(hit.model_copy(update={"score": -0.1})) == 0.0
