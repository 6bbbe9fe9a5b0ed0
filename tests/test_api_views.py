"""What a new user's web page reads from the API: offline docs, filter values, the document view, file names."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import KEY, NEEDS, RESULTS, error, make_client, wait_for, write_market_corpus


@pytest.fixture(scope="module")
def market_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("views")
    home = root / "home"
    assert ingest([write_market_corpus(root / "corpus")], Settings(home=home)).failed == []
    return home


@pytest.fixture
def market(market_home: Path) -> Iterator[TestClient]:
    with make_client(market_home) as c:
        yield c


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize(("page", "title"), [("/docs", "Swagger UI"), ("/redoc", "ReDoc")])
def test_api_docs_load_nothing_from_elsewhere(market: TestClient, page: str, title: str) -> None:
    resp = market.get(page)
    assert resp.status_code == 200 and title in resp.text and "<script>" not in resp.text  # no inline script
    assets = _assets(resp.text)
    assert assets and not [a for a in assets if "//" in a]  # every file from this server
    for a in assets:
        got = market.get("/" + a)
        assert got.status_code == 200 and got.content, a
    init = market.get("/static/docs/swagger-init.js").text
    assert "SwaggerUIBundle" in init and "openapi.json" in init and not re.search(r"https?:", init)


def _records(folder: str) -> list[dict[str, object]]:
    path = Path(__file__).resolve().parents[1] / "corpus" / folder / "utilisation.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_facets_are_the_values_in_the_index_with_counts(market: TestClient) -> None:
    body = market.get("/facets").json()
    fields = Counter(str(r["field"]) for r in _records("needs") + _records("results")
                     if r["id"] in NEEDS | RESULTS and r.get("field"))
    assert body["kind"] == [{"value": "document", "count": 4}, {"value": "need", "count": len(NEEDS)},
                            {"value": "result", "count": len(RESULTS)}]
    assert body["field"] == [{"value": v, "count": n} for v, n in sorted(fields.items())]
    assert body["year"] == []  # no document of this corpus has a year: the page hides the year filter


def test_facets_count_years_of_records(kb_home: Path, tmp_path: Path) -> None:
    texts = ["煤层气井排采控制技术成果。", "煤层气井排采智能调参装置。", "排采过程井底流压监测系统。"]
    rows = [{"id": f"R{n}", "kind": "result", "title": f"成果{n}", "description": t, "year": y}
            for n, (t, y) in enumerate(zip(texts, [2021, 2023, 2023], strict=True))]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert ingest([tmp_path / "results"], Settings(home=kb_home)).failed == []
    with make_client(kb_home) as c:
        assert c.get("/facets").json()["year"] == [{"value": "2021", "count": 1}, {"value": "2023", "count": 2}]
        hits = c.post("/search", json={"query": "排采", "filters": {"year": "2023"}}).json()["hits"]
        assert sorted(h["doc_id"] for h in hits) == ["R1", "R2"]  # the facet's value works as a filter


def test_document_view_has_every_passage_in_order_with_the_hits_position(market: TestClient) -> None:
    hit = market.post("/search", json={"query": "U型井 直井 排水采气", "top_k": 1}).json()["hits"][0]
    assert hit["doc_id"] == "horizontal"
    doc = market.get(f"/documents/{hit['doc_id']}", params={"chunk": hit["id"], "q": "直井"}).json()
    assert [p["position"] for p in doc["passages"]] == list(range(len(doc["passages"])))
    assert [p["section"] for p in doc["passages"]] == ["煤层气水平井技术 > 1.多分支水平井", "煤层气水平井技术 > 2.U型井"]
    assert doc["passages"][doc["focus"]]["id"] == hit["id"]
    assert "<mark>直井</mark>" in doc["passages"][doc["focus"]]["highlighted"]
    plain = market.get("/documents/horizontal", params={"chunk": "no-such-chunk"}).json()
    assert plain["focus"] is None and all(p["highlighted"] == "" for p in plain["passages"])
    error(market.get("/documents/horizontal", params={"q": "x" * 2001}), 422)


def test_hits_of_an_upload_show_the_clients_file_name(kb_home: Path) -> None:
    with make_client(kb_home) as c:
        c.headers["X-API-Key"] = KEY
        text = "沁水盆地高煤阶煤储层采用清洁压裂液体系进行水力压裂，支撑剂采用石英砂。\n".encode()
        job = wait_for(c, c.post("/documents", files=[("files", ("压裂液笔记.txt", text, "text/plain"))]).json()["job_id"])
        assert job["status"] == "done", job
        hit = c.post("/search", json={"query": "清洁压裂液", "top_k": 1}).json()["hits"][0]
        listed = c.get(f"/documents/{hit['doc_id']}").json()
    assert hit["doc_id"].startswith("up-")  # stored under a server-made name ...
    assert hit["source"] == listed["source"] == "压裂液笔记.txt"  # ... shown by the client's
    assert not hit["title"].startswith("up-") and not listed["title"].startswith("up-")
