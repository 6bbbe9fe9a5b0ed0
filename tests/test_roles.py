"""Who may see what: internal records never reach a reader key (or an anonymous public reader) through any
route, while the bureau's key sees them; writes need an admin key; KB_API_KEYS roles and bare keys."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from kb.ingest.pipeline import ingest
from kb.settings import Settings, parse_api_keys
from tests.utils import make_client, write_market_corpus

READER, BUREAU, ADMIN = "k-reader-0001", "k-bureau-0002", "k-admin-0003"
KEYS = f"lookup:reader:{READER},office:bureau:{BUREAU},ops:admin:{ADMIN}"
# an enterprise's confidential need and a result it may not publish yet: ids, titles and a word found nowhere else
SECRET_NEED = {"id": "N-INT-901", "kind": "need", "title": "保密需求：井下钻孔封孔漏气", "visibility": "internal",
               "description": "某煤矿企业的保密需求：井下抽采钻孔用氦氖透镜封孔后仍漏气严重，抽采浓度低，需要新型封孔材料。",
               "field": "内部试点领域", "region": "山西沁水县", "trl": 5, "keywords": ["氦氖透镜", "封孔"]}
SECRET_RESULT = {"id": "R-INT-902", "kind": "result", "title": "未公开成果：氦氖透镜封孔材料", "visibility": "内部",
                 "description": "一种膨胀型氦氖透镜封孔材料，钻孔封孔后漏气量下降，抽采浓度提高，尚未公开。",
                 "field": "内部试点领域", "region": "山西晋城市", "trl": 6, "keywords": ["氦氖透镜", "封孔材料"]}
# a public need with contact details: the record endpoint shows them to the bureau, nothing shows them to a reader
CONTACT_NEED = {"id": "N-PUB-905", "kind": "need", "title": "排采井远程监控", "field": "排采", "region": "山西沁水县",
                "description": "分散的排采井需要远程监控液面和套压。", "contact": "王工desk@example.invalid"}
SECRETS = ("N-INT-901", "R-INT-902", "保密需求", "未公开成果", "氦氖透镜", "内部试点领域", "example.invalid")
WORD = "氦氖透镜封孔漏气"
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def _mcp(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def _tool(name: str, **args: Any) -> dict[str, Any]:
    return _mcp("tools/call", {"name": name, "arguments": args})


# every route that returns record text: (method, path, JSON body or query params, extra headers) per request
RECORD_ROUTES: dict[tuple[str, str], list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]] = {
    ("POST", "/search"): [("POST", "/search", {"query": WORD, "top_k": 10}, {})],
    ("POST", "/ask"): [("POST", "/ask", {"question": WORD}, {})],
    ("POST", "/match"): [("POST", "/match", {"text": WORD, "top_k": 20}, {}),
                         ("POST", "/match", {"need_id": "N-INT-901"}, {}),
                         ("POST", "/match", {"result_id": "R101", "top_k": 20}, {})],
    ("POST", "/match/batch"): [("POST", "/match/batch", {"top_k": 20}, {}),
                               ("POST", "/match/batch", {"top_k": 20}, {"Accept": "application/vnd.openxmlformats-"
                                                                        "officedocument.spreadsheetml.sheet"})],
    ("GET", "/documents"): [("GET", "/documents", {"limit": 200}, {}),
                            ("GET", "/documents", {"limit": 200, "kind": "need"}, {})],
    ("GET", "/documents/{doc_id:path}"): [("GET", "/documents/N-INT-901", None, {}),
                                          ("GET", "/documents/R-INT-902", {"q": WORD}, {})],
    ("GET", "/facets"): [("GET", "/facets", None, {})],
    ("GET", "/stats"): [("GET", "/stats", None, {})],
    ("GET", "/records/{doc_id}"): [("GET", "/records/N-INT-901", None, {}), ("GET", "/records/N-PUB-905", None, {})],
    ("GET", "/records/{doc_id}/versions"): [("GET", "/records/R-INT-902/versions", None, {})],
    ("GET", "/match/new"): [("GET", "/match/new", {"since": 0}, {})],
    ("GET", "/needs/unmet"): [("GET", "/needs/unmet", None, {})],
    ("POST", "/retrieval"): [("POST", "/retrieval", {"knowledge_id": "all", "query": WORD}, {})],
    ("POST", "/dify/retrieval"): [("POST", "/dify/retrieval", {"knowledge_id": "result", "query": WORD}, {})],
    ("POST", "/mcp"): [("POST", "/mcp", _tool("search", query=WORD, top_k=10), MCP_ACCEPT),
                       ("POST", "/mcp", _tool("ask", question=WORD), MCP_ACCEPT),
                       ("POST", "/mcp", _tool("match", text=WORD, top_k=20), MCP_ACCEPT),
                       ("POST", "/mcp", _tool("get_document", doc_id="R-INT-902"), MCP_ACCEPT),
                       ("POST", "/mcp", _mcp("resources/list", {}), MCP_ACCEPT),
                       ("POST", "/mcp", _mcp("resources/read", {"uri": "kb://documents/N-INT-901"}), MCP_ACCEPT)],
}
COUNTS = {("GET", "/stats"), ("GET", "/needs/unmet")}  # routes whose answer may count an internal record, not show it
# routes that return no record text, and why; a reader's answers are still checked for the secrets
NO_RECORD_TEXT: dict[tuple[str, str], str] = {
    ("GET", "/health"): "counts and the model name",
    ("GET", "/record-form"): "the fields of the record form",
    ("GET", "/sync/last"): "file names of the last folder sync",
    ("GET", "/jobs/{job_id}"): "a job's status; job ids are random and handed only to the admin who wrote",
    ("GET", "/mcp"): "the MCP stream endpoint: stateless, it answers only POSTs", ("HEAD", "/mcp"): "as GET /mcp",
    ("DELETE", "/mcp"): "ends an MCP session; stateless, there are none",
    ("GET", "/"): "the web page", ("GET", "/docs"): "API docs page", ("GET", "/redoc"): "API docs page",
    ("GET", "/openapi.json"): "the schema", ("HEAD", "/openapi.json"): "the schema",
    ("GET", "/docs/oauth2-redirect"): "API docs page",
}
# the bureau's own routes (match records, 对接记录): a bureau or admin key, never a reader's
BUREAU_ROUTES: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("POST", "/pairs"): ("POST", "/pairs", {"need_id": "N101", "cand_id": "R101", "status": "推荐"}),
    ("GET", "/pairs"): ("GET", "/pairs", None),
    ("GET", "/pairs/summary"): ("GET", "/pairs/summary", None),
}
WRITE_ROUTES: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("POST", "/documents"): ("POST", "/documents", None),
    ("DELETE", "/documents/{doc_id:path}"): ("DELETE", "/documents/N101", None),
    ("POST", "/records"): ("POST", "/records", {**SECRET_NEED, "id": "N-NEW-1"}),
    ("PUT", "/records/{doc_id}"): ("PUT", "/records/N101", {**SECRET_NEED, "id": None}),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roles")
    corpus = write_market_corpus(root / "corpus")
    (corpus / "needs" / "internal.jsonl").write_text(json.dumps(SECRET_NEED, ensure_ascii=False) + "\n", "utf-8")
    (corpus / "results" / "internal.jsonl").write_text(json.dumps(SECRET_RESULT, ensure_ascii=False) + "\n", "utf-8")
    (corpus / "needs" / "contact.jsonl").write_text(json.dumps(CONTACT_NEED, ensure_ascii=False) + "\n", "utf-8")
    home = root / "home"
    assert ingest([corpus], Settings(home=home)).failed == []
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    """The service over ``home``, where an admin has edited the internal result once (so it has a version)."""
    with make_client(home, api_keys=KEYS) as c:
        edit = {k: v for k, v in SECRET_RESULT.items() if k not in ("id", "kind")} | {"field": "瓦斯抽采"}
        resp = c.put("/records/R-INT-902", json=edit, headers={"X-API-Key": ADMIN})
        assert resp.status_code == 200 and resp.json()["version"] == 1, resp.text
        yield c


def _text(resp: Any) -> str:
    """Everything a response shows: its body, or every cell of a spreadsheet."""
    if resp.headers.get("content-type", "").startswith("application/vnd.openxmlformats"):
        wb = openpyxl.load_workbook(io.BytesIO(resp.content), read_only=True)
        return "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row)
    return str(resp.text)


def _call(c: TestClient, req: tuple[str, str, dict[str, Any] | None, dict[str, str]], key: str | None) -> Any:
    method, path, data, headers = req
    headers = {**headers, **({"X-API-Key": key} if key else {})}
    if method == "GET":
        return c.get(path, params=data, headers=headers)
    return c.request(method, path, json=data, headers=headers)


def _routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path) of every route, included routers' routes among them (mounts have no methods)."""
    return {(m, rc.path) for rc in iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
            for m in rc.methods or ()}


def test_every_route_is_classified(client: TestClient) -> None:
    """A new route fails here until it is listed: as returning record text (and then checked below), as
    returning none, or as a write."""
    known = set(RECORD_ROUTES) | set(NO_RECORD_TEXT) | set(BUREAU_ROUTES) | set(WRITE_ROUTES)
    routes = _routes(client)
    assert ("POST", "/search") in routes and ("GET", "/records/{doc_id}") in routes  # included routers are seen
    assert routes - known == set()


@pytest.mark.parametrize("route", sorted(RECORD_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("who", ["reader key", "no key"])
def test_a_reader_never_sees_an_internal_record(client: TestClient, route: tuple[str, str], who: str) -> None:
    """Per request: the bureau's answer shows an internal record (so the route could leak it), a reader's
    (a reader key, or no key on a public-read server) shows none of its ids, titles or words it was not asked for."""
    for req in RECORD_ROUTES[route]:
        bureau = _call(client, req, BUREAU)
        assert bureau.status_code == 200, bureau.text
        bureau_text = _text(bureau)
        reader = _call(client, req, READER if who == "reader key" else None)
        assert reader.status_code in (200, 404), reader.text
        shown = _text(reader)
        # the bureau's answer shows an internal record, or (counts: stats, unmet needs) differs from the reader's
        assert any(s in bureau_text for s in SECRETS) or (route in COUNTS and bureau_text != shown), req  # the request's own words may come back (the query, the id asked for): not a leak
        assert [s for s in SECRETS if s in shown and s not in json.dumps(req, ensure_ascii=False)] == [], req
    if route == ("GET", "/stats"):  # counts only: the reader's count leaves the internal need and result out
        by_kind = [_call(client, RECORD_ROUTES[route][0], k).json()["by_kind"] for k in (BUREAU, READER)]
        assert (by_kind[0]["need"] - by_kind[1]["need"], by_kind[0]["result"] - by_kind[1]["result"]) == (1, 1)


@pytest.mark.parametrize("route", sorted(r for r in NO_RECORD_TEXT if r[1] != "/mcp"),  # GET /mcp is an endless stream
                         ids=lambda r: f"{r[0]} {r[1]}")
def test_routes_without_record_text_show_no_secret(client: TestClient, route: tuple[str, str]) -> None:
    method, path = route
    resp = _call(client, (method, path.replace("{job_id}", "j-none"), None, {}), READER)
    assert [s for s in SECRETS if s in resp.text] == []


def test_internal_records_by_id_are_not_found_for_a_reader(client: TestClient) -> None:
    """Asked for by id, an internal record does not exist for a reader (404, as an unknown id), but does for the
    bureau: a reader cannot even learn that it exists."""
    for key, status in ((READER, 404), (None, 404), (BUREAU, 200), (ADMIN, 200)):
        headers = {"X-API-Key": key} if key else {}
        assert client.get("/documents/N-INT-901", headers=headers).status_code == status
        assert client.post("/match", json={"need_id": "N-INT-901"}, headers=headers).status_code == status


@pytest.mark.parametrize("route", sorted(WRITE_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_writes_need_an_admin_key(client: TestClient, route: tuple[str, str]) -> None:
    method, path, body = WRITE_ROUTES[route]
    files = {"files": ("x.txt", b"text", "text/plain")} if path == "/documents" and method == "POST" else None
    for key in (READER, BUREAU):
        resp = client.request(method, path, files=files, json=body, headers={"X-API-Key": key})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", resp.text
    assert client.request(method, path, files=files, json=body).status_code == 401


def test_api_key_entries_name_a_role_and_a_bare_key_stays_admin() -> None:
    entries = parse_api_keys(f"{KEYS}, plain-old-key ,")
    assert [(e.name, e.role) for e in entries[:3]] == [("lookup", "reader"), ("office", "bureau"), ("ops", "admin")]
    assert entries[3].role == "admin" and entries[3].key == "plain-old-key" and entries[3].name.startswith("key-")
    assert "plain-old-key" not in entries[3].name
    with pytest.raises(ValueError, match="role one of reader, bureau, admin"):
        Settings(api_keys="ops:superuser:k1")


def test_a_bare_key_still_writes(home: Path) -> None:
    """Deployments from before roles keep working: a bare KB_API_KEYS key uploads (and sees internal records)."""
    with make_client(home, api_keys=f"old-key-123,{KEYS}") as c:
        assert c.get("/documents/N-INT-901", headers={"X-API-Key": "old-key-123"}).status_code == 200
        resp = c.post("/documents", files={"files": ("x.exe", b"MZ", "application/octet-stream")},
                      headers={"X-API-Key": "old-key-123"})
        assert resp.status_code not in (401, 403), resp.text  # let in as a writer (the file type is another matter)


def test_visibility_column_values_and_a_change_of_visibility_alone(tmp_path: Path) -> None:
    """公开/内部 and public/internal are read, an unknown value refuses the row (never a public record by
    mistake), and making a record internal without touching its text takes effect on the next ingest."""
    from kb.index.manifest import Manifest
    from kb.models import PUBLIC_ONLY

    rows = [{**SECRET_NEED, "id": "N1", "visibility": "公开"}, {**SECRET_NEED, "id": "N2", "visibility": "内部"},
            {**SECRET_NEED, "id": "N3", "visibility": "secret"}, {**SECRET_NEED, "id": "N4", "visibility": ""}]
    path = tmp_path / "needs" / "n.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    settings = Settings(home=tmp_path / "home")
    failed = ingest([path], settings).failed
    assert [f.error for f in failed] == ["n.jsonl line 3 (id N3): visibility 'secret' is not public or internal "
                                         "(公开 / 内部)"]

    def public_ids() -> list[str]:
        m = Manifest(settings.manifest_path)
        try:
            return [r["doc_id"] for r in m.scoped(PUBLIC_ONLY).page_documents("need", "", 10)[1]]
        finally:
            m.close()

    assert public_ids() == ["N1", "N4"]
    rows[0]["visibility"] = "internal"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if r["id"] != "N3"), "utf-8")
    assert ingest([path], settings).failed == []
    assert public_ids() == ["N4"]


def test_a_manifest_from_before_visibilities_is_migrated(tmp_path: Path) -> None:
    """An existing index gains the column on open, every document in it public."""
    import sqlite3

    from kb.index.manifest import Manifest
    from kb.models import PUBLIC_ONLY

    path = tmp_path / "manifest.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE documents (doc_id TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT NOT NULL,
      source TEXT NOT NULL, fingerprint TEXT NOT NULL, n_chunks INTEGER NOT NULL, meta TEXT NOT NULL, at REAL NOT NULL,
      gen INTEGER NOT NULL DEFAULT 0);
      INSERT INTO documents VALUES ('D1', 'paper', '旧文档', '/x/d1.txt', 'f', 0, '{}', 0, 0);""")
    old.commit()
    old.close()
    m = Manifest(path)
    try:
        assert m.scoped(PUBLIC_ONLY).document("D1") is not None
        assert [str(r[0]) for r in m.db.execute("SELECT visibility FROM documents")] == ["public"]
    finally:
        m.close()


def test_a_near_duplicate_link_never_names_an_internal_record(tmp_path: Path) -> None:
    """A public report copying an internal one is linked to it as a possible duplicate: the bureau sees the link,
    a reader sees the public report with no link (its duplicate_of would name the internal id)."""
    from kb.ingest.pipeline import ingest_documents
    from kb.models import EVERYTHING, PUBLIC_ONLY, Document, Section
    from kb.search.hybrid import Searcher

    text = SECRET_RESULT["description"] * 8  # long enough (200 characters) to be compared for duplicates
    settings = Settings(home=tmp_path / "home")
    internal = Document("P-INT-1", "paper", "未公开成果报告", "r.txt", [Section(text)], {"visibility": "internal"})
    assert ingest_documents([internal], settings, "/x/r.txt").failed == []
    twin = Document("P-PUB-1", "paper", "公开报告", "p.txt", [Section(text + "已公开。")])
    assert ingest_documents([twin], settings, "/x/p.txt").failed == []
    s = Searcher(settings)
    try:
        seen = {}
        for name, visible in (("bureau", EVERYTHING), ("reader", PUBLIC_ONLY)):
            view = s.scoped(visible)
            hits = view.search(WORD, top_k=5).hits
            seen[name] = ([(h.doc_id, h.duplicate_of) for h in hits], view.manifest.document("P-PUB-1")["duplicate_of"],
                          [r["duplicate_of"] for r in view.manifest.page_documents(None, "", 10)[1]],
                          [d.doc_id for d in view.manifest.stats().duplicates])
    finally:
        s.close()
    assert seen["bureau"][1] == "P-INT-1" and seen["bureau"][3] == ["P-PUB-1"]
    assert seen["reader"] == ([("P-PUB-1", None)], None, [None], [])


def test_contacts_only_reach_the_bureau_through_the_record_endpoint(client: TestClient) -> None:
    for key, contact in ((BUREAU, CONTACT_NEED["contact"]), (ADMIN, CONTACT_NEED["contact"]), (READER, None), (None, None)):
        shown = client.get("/records/N-PUB-905", headers={"X-API-Key": key} if key else {}).json()
        assert (shown["title"], shown["contact"]) == (CONTACT_NEED["title"], contact)
    hits = client.post("/search", json={"query": "排采井远程监控液面", "top_k": 5}, headers={"X-API-Key": BUREAU})
    assert "N-PUB-905" in hits.text and "example.invalid" not in hits.text


@pytest.mark.parametrize("route", sorted(BUREAU_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_match_records_need_the_bureau(client: TestClient, route: tuple[str, str]) -> None:
    method, path, body = BUREAU_ROUTES[route]
    resp = client.request(method, path, json=body, headers={"X-API-Key": READER})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", resp.text
    assert client.request(method, path, json=body).status_code == 401
    assert client.request(method, path, json=body, headers={"X-API-Key": BUREAU}).status_code == 200
