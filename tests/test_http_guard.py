"""The HTTP edge (issue 19): head size limit, wrong-key back-off, per-key budgets, Allow on 405, security headers,
and no server path in any answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.errors import without_paths
from api.jobs import write_lock
from api.limits import AuthFailures, RateLimitedError
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import KEY, error, kb_serve, make_client


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("guard")
    with kb_serve(root / "home", root / "server.log") as (url, _):
        yield url


def _send_big_head(url: str, what: str, size: int, out: dict[str, object]) -> None:
    """Send a request whose header (or request line) is ``size`` bytes; record how it ended and when."""
    host, port = url.removeprefix("http://").split(":")
    start = time.monotonic()
    sock = socket.create_connection((host, int(port)))
    try:
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " if what == "header" else b"GET /health?q="
        sock.sendall(head)
        block = b"a" * (1 << 20)
        for _ in range(size >> 20):
            sock.sendall(block)
        sock.sendall(b"\r\n\r\n" if what == "header" else b" HTTP/1.1\r\nHost: x\r\n\r\n")
        out["answer"] = sock.recv(100)
    except OSError as exc:  # the server closed the connection on us mid-send
        out["answer"] = type(exc).__name__
    finally:
        sock.close()
        out["took"] = time.monotonic() - start


@pytest.mark.slow  # a uvicorn process and 100 MB sent to it
@pytest.mark.parametrize("what", ["header", "request line"])
def test_a_100_mb_head_is_cut_off_and_other_requests_keep_their_pace(served: str, what: str) -> None:
    """httptools had no head limit: a 100 MB header held every request of the server for 11.5 s."""
    out: dict[str, object] = {}
    sender = threading.Thread(target=_send_big_head, args=(served, what, 100 << 20, out))
    sender.start()
    slowest = 0.0
    with httpx.Client(timeout=30) as client:
        while sender.is_alive():
            start = time.monotonic()
            assert client.get(f"{served}/health").status_code == 200
            slowest = max(slowest, time.monotonic() - start)
            time.sleep(0.02)
    sender.join()
    assert slowest < 2.0, slowest
    answer = out["answer"]
    assert answer in ("ConnectionResetError", "BrokenPipeError") or (
        isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 400")), answer


@pytest.mark.slow  # a real `kb serve` process (the in-process test below checks every header)
def test_the_served_page_carries_its_security_headers(served: str) -> None:
    page = httpx.get(served + "/")
    assert page.status_code == 200 and page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_two_hundred_wrong_keys_get_429s(kb_home: Path) -> None:
    with make_client(kb_home) as c:
        codes = [c.get("/stats", headers={"X-API-Key": f"guess-{i:03d}"}).status_code for i in range(200)]
        assert codes[:10] == [401] * 10 and codes[10] == 429 and codes.count(429) >= 180, codes
        blocked = c.get("/stats", headers={"X-API-Key": KEY})  # the right key too: a guess must not learn it hit
        assert "too many wrong API keys" in error(blocked, 429, "rate_limited")
        assert 1 <= int(blocked.headers["Retry-After"]) <= 900
        assert c.get("/stats").status_code == 200  # reads without a key are not authentication
        other = TestClient(c.app, client=("10.0.0.7", 40000))  # another address is not held back
        assert other.get("/stats", headers={"X-API-Key": KEY}).status_code == 200


def test_wrong_keys_sent_to_difys_endpoint_count_too(kb_home: Path) -> None:
    body = {"knowledge_id": "all", "query": "煤层气", "retrieval_setting": {"top_k": 1, "score_threshold": 0}}
    with make_client(kb_home) as c:
        codes = [c.post("/retrieval", json=body, headers={"Authorization": f"Bearer guess-{i}"}).status_code
                 for i in range(12)]
        assert codes[:10] == [403] * 10 and codes[10:] == [429, 429]  # Dify's "authorization failed" is a 403
        error(c.get("/stats", headers={"X-API-Key": KEY}), 429, "rate_limited")


@pytest.mark.slow  # waits out the back-off
def test_the_back_off_doubles_with_each_wrong_key() -> None:
    guard = AuthFailures(per_minute=2)
    for _ in range(2):
        guard.check("1.2.3.4")
        guard.failed("1.2.3.4")
    waits = []
    for _ in range(2):
        with pytest.raises(RateLimitedError) as exc:
            guard.check("1.2.3.4")
        waits.append(int(exc.value.headers["Retry-After"]))  # type: ignore[index]
        time.sleep(waits[-1] + 0.05)
        guard.check("1.2.3.4")  # the back-off is over
        guard.failed("1.2.3.4")  # one more wrong key: twice as long
    assert waits == [1, 2]
    guard.check("5.6.7.8")


def test_each_key_has_its_own_budget_and_made_up_keys_have_none(kb_home: Path) -> None:
    with make_client(kb_home, api_keys=f"{KEY},second-key-0123", rate_limit=5) as c:
        for key in (KEY, "second-key-0123", None):  # one host: two keys, then callers without one
            headers = {"X-API-Key": key} if key else {}
            codes = [c.get("/stats", headers=headers).status_code for _ in range(6)]
            assert codes == [200] * 5 + [429], (key, codes)
    with make_client(kb_home, api_keys="", dev=True, rate_limit=3) as c:  # no keys configured: a key is no identity
        codes = [c.get("/stats", headers={"X-API-Key": f"made-up-{i}"}).status_code for i in range(4)]
        assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/search", "POST"), ("GET", "/search", "POST"), ("PATCH", "/documents", "GET, POST"),
    ("PUT", "/documents/x", "GET, DELETE"), ("POST", "/health", "GET"), ("POST", "/jobs/abc", "GET"),
    ("DELETE", "/", "GET"), ("POST", "/static/app.js", "GET, HEAD")])
def test_405_says_what_is_allowed(kb_home: Path, method: str, path: str, allow: str) -> None:
    with make_client(kb_home) as c:
        resp = c.request(method, path, headers={"X-API-Key": KEY})
        error(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == allow


def test_security_headers_on_every_answer(kb_home: Path) -> None:
    with make_client(kb_home, max_upload_mb=1) as c:
        answers = [c.get("/"), c.get("/static/app.js"), c.get("/health"), c.post("/search", json={"query": "煤层气"}),
                   c.get("/documents/nope"), c.post("/documents", files=[("files", ("a.md", b"# x", "text/markdown"))]),
                   c.post("/documents", content=b"x" * (2 << 20), headers={"Content-Type": "text/plain", "X-API-Key": KEY})]
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 404, 401, 413]
        for r in answers:
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["content-security-policy"] == (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
        docs = c.get("/docs").headers["content-security-policy"]
        assert "https://cdn.jsdelivr.net" in docs and "frame-ancestors 'none'" in docs


def test_no_server_path_in_a_busy_answer(kb_home: Path, mini_corpus: Path) -> None:
    ingest([mini_corpus], Settings(home=kb_home))
    with make_client(kb_home) as c:
        c.app.state.jobs.delete_wait_s = 0.2
        with write_lock(Settings(home=kb_home), wait_s=1):
            message = error(c.delete("/documents/horizontal", headers={"X-API-Key": KEY}), 409, "busy")
    assert "updating the index in KB_HOME" in message and str(kb_home) not in message and "/tmp" not in message


def test_without_paths() -> None:
    s = Settings(home=Path("/srv/kb/data"))
    assert without_paths("another writer (pid 7: kb ingest /home/ops/corpus/plan.txt) is updating the index in "
                         "/srv/kb/data; wait", s) == ("another writer (pid 7: kb ingest plan.txt) is updating the index "
                                                      "in KB_HOME; wait")
    assert without_paths("/srv/kb/data/uploads/up-0123.pdf: not a PDF", s) == "KB_HOME/uploads/up-0123.pdf: not a PDF"
    kept = "no Chroma server answers at http://127.0.0.1:8001 (KB_CHROMA_URL); 2024/05/01; 樊庄/郑庄 1/2"
    assert without_paths(kept, s) == kept
