"""Limits on work (issue 19): passages per file and per job, job wall time, files per request, large deletes as
jobs, identical files under each name, /health counting published documents, and the upload retention."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.uploads import sweep
from kb.cli import main as cli
from kb.index import lock as kb_lock
from kb.index.manifest import Manifest
from kb.ingest.pipeline import ingest
from kb.models import Document, Section
from kb.settings import Settings
from tests.utils import KEY, error, make_client, wait_for

PARA = "沁水盆地高煤阶煤层渗透率低，多分支水平井可以扩大泄气面积。樊庄区块应用多分支水平井后单井日产气量明显提高。"


def _doc(sentences: int, tag: str) -> bytes:
    """A Markdown document of ``sentences`` 56-character sentences (about 5 per 300-character passage)."""
    return (f"# {tag}\n\n" + "\n".join(f"{tag}{n:04d}{PARA}" for n in range(sentences))).encode()


def _chunks(s: Settings, doc_id: str) -> int:
    m = Manifest(s.manifest_path)
    try:
        return len(m.chunk_ids(doc_id))
    finally:
        m.close()


@pytest.fixture
def client(kb_home: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    overrides = getattr(request, "param", {})
    with make_client(kb_home, **overrides) as c:
        c.headers["X-API-Key"] = KEY
        yield c


def test_fifty_megabyte_text_fails_alone_from_its_size(tmp_path: Path, settings: Settings) -> None:
    """The issue's 52 MB text made 173,334 passages in a 256 s job; now it is refused before it is decoded."""
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        line = ("Reservoir pressure control keeps the flowing pressure falling slowly. " + PARA + "\n").encode()
        for _ in range(50_000_000 // len(line) + 1):
            f.write(line)
    small = tmp_path / "small.md"
    small.write_bytes(_doc(3, "小文件"))
    assert big.stat().st_size > 50_000_000
    rep = ingest([big, small], settings)
    assert rep.ingested == 1 and _chunks(settings, "small") == 1 and _chunks(settings, "big") == 0
    assert [f.path for f in rep.failed] == [str(big)]
    assert rep.failed[0].error == ("big.txt: 50.0 MB of text, more than KB_MAX_FILE_CHUNKS=20000 passages of "
                                   "KB_CHUNK_SIZE=300 characters; split the file or raise the limit")


def test_fifty_megabyte_upload_is_a_clear_per_file_error(kb_home: Path) -> None:
    body = _doc(50_000_000 // 168 + 1, "大")  # 50 MB (under the 50 MiB body limit), UTF-8 Chinese
    assert 50_000_000 < len(body) < 50 * 1024 * 1024
    with make_client(kb_home) as c:
        resp = c.post("/documents", headers={"X-API-Key": KEY},
                      files=[("files", ("大文件.md", body, "text/markdown")), ("files", ("小.md", _doc(3, "小"), "text/markdown"))])
        job = wait_for(c, resp.json()["job_id"], timeout=120)
    assert job["status"] == "done" and job["report"]["ingested"] == 1
    assert [f["path"] for f in job["failed"]] == ["大文件.md"]
    assert job["failed"][0]["error"].startswith("大文件.md: 5") and "KB_MAX_FILE_CHUNKS=20000" in job["failed"][0]["error"]
    assert str(kb_home) not in str(job)


def test_a_file_over_the_passage_limit_fails_and_the_rest_go_in(tmp_path: Path, kb_home: Path) -> None:
    s = Settings(home=kb_home, max_file_chunks=5)  # 5 passages are 6,000 bytes at most: these are cut, then counted
    (tmp_path / "long.md").write_bytes(_doc(30, "长"))  # 8 passages, 5,016 bytes
    (tmp_path / "short.md").write_bytes(_doc(8, "短"))  # 2 passages
    (tmp_path / "huge.md").write_bytes(_doc(40, "巨"))  # 6,686 bytes: refused from its size
    rep = ingest([tmp_path / "long.md", tmp_path / "short.md", tmp_path / "huge.md"], s)
    assert rep.ingested == 1 and _chunks(s, "short") == 2 and _chunks(s, "long") == 0
    assert [f.error for f in rep.failed] == [
        "long.md: 8 passages, more than KB_MAX_FILE_CHUNKS=5 passages of KB_CHUNK_SIZE=300 characters; "
        "split the file or raise the limit",
        "huge.md: 6,686 bytes of text, more than KB_MAX_FILE_CHUNKS=5 passages of KB_CHUNK_SIZE=300 characters; "
        "split the file or raise the limit"]


@pytest.mark.parametrize("client", [{"max_job_chunks": 3}], indirect=True)
def test_a_job_stops_taking_files_at_its_passage_limit(client: TestClient, settings: Settings) -> None:
    files = [("files", (f"{n}.md", _doc(8, f"文{n}"), "text/markdown")) for n in range(3)]  # 2 passages each
    job = wait_for(client, client.post("/documents", files=files).json()["job_id"])
    assert job["status"] == "done" and job["report"]["ingested"] == 1 and job["report"]["chunks"] == 2
    assert {f["path"] for f in job["failed"]} == {"1.md", "2.md"}
    assert "would take the job past 3 (KB_MAX_JOB_CHUNKS, 2 used); upload it in another job" in job["failed"][0]["error"]


@pytest.mark.parametrize("client", [{"job_timeout_s": 0.001}], indirect=True)
def test_a_job_past_its_time_limit_fails_the_files_it_has_not_read(client: TestClient) -> None:
    files = [("files", (f"{n}.md", _doc(2, f"文{n}"), "text/markdown")) for n in range(2)]
    job = wait_for(client, client.post("/documents", files=files).json()["job_id"])
    assert job["status"] == "done" and job["report"]["ingested"] == 0
    assert job["failed"] == [{"path": f"{n}.md", "error": f"{n}.md: not read, the job ran past its time limit "
                                                          "(KB_JOB_TIMEOUT_S); upload it again"} for n in range(2)]


@pytest.mark.parametrize("client", [{"max_upload_files": 3}], indirect=True)
def test_too_many_files_in_one_request_is_413(client: TestClient, kb_home: Path) -> None:
    files = [("files", (f"{n}.md", _doc(1, f"文{n}"), "text/markdown")) for n in range(4)]
    assert "4 files in one request, more than 3 (KB_MAX_UPLOAD_FILES)" in error(client.post("/documents", files=files),
                                                                               413, "too_many_files")
    assert not (kb_home / "uploads").exists()


@pytest.mark.parametrize("client", [{"delete_sync_chunks": 2}], indirect=True)
def test_a_large_delete_is_a_background_job_with_progress(client: TestClient, kb_home: Path) -> None:
    files = [("files", ("big.md", _doc(30, "大"), "text/markdown")), ("files", ("small.md", _doc(3, "小"), "text/markdown"))]
    wait_for(client, client.post("/documents", files=files).json()["job_id"])
    docs = {d["source"]: d for d in client.get("/documents").json()["items"]}
    big, small = docs["big.md"], docs["small.md"]
    assert (big["chunks"], small["chunks"]) == (8, 1)

    resp = client.delete(f"/documents/{small['doc_id']}")
    assert resp.status_code == 200 and resp.json() == {"deleted": small["doc_id"], "chunks": 1}  # as before
    resp = client.delete(f"/documents/{big['doc_id']}")
    assert resp.status_code == 202
    body = resp.json()
    assert (body["deleted"], body["chunks"]) == (big["doc_id"], 8)
    job = wait_for(client, body["job_id"])
    assert (job["task"], job["status"], job["progress"], job["doc_id"], job["chunks"]) == \
        ("delete", "done", 1.0, big["doc_id"], 8)
    assert job["report"]["deleted"] == 1 and job["report"]["chunks"] == 8
    error(client.get(f"/documents/{big['doc_id']}"), 404)
    assert client.get("/health").json()["documents"] == 0


def test_identical_files_are_reported_under_each_name(client: TestClient) -> None:
    files = [("files", (name, b"  \n", "text/plain")) for name in ("a.txt", "b.txt")]
    files += [("files", (name, _doc(2, "同"), "text/markdown")) for name in ("c.md", "d.md")]
    job = wait_for(client, client.post("/documents", files=files).json()["job_id"])
    assert job["files"] == ["a.txt", "b.txt", "c.md", "d.md"] and job["report"]["ingested"] == 1
    assert job["failed"] == [{"path": "a.txt", "error": "a.txt: empty file"}, {"path": "b.txt", "error": "b.txt: empty file"}]


def test_health_and_stats_count_published_documents_only(kb_home: Path, mini_corpus: Path) -> None:
    s = Settings(home=kb_home)
    ingest([mini_corpus], s)
    m = Manifest(s.manifest_path)
    with m:  # what a write leaves until it publishes (or a crash, until recovery): committed, not visible
        gen = m.written_gen() + 1
        m.put_document(Document("pending", "document", "未发布", "x.md", [Section("正文")]), [], "/x.md", "f", gen)
        m.mark_written(gen)
    m.close()
    with kb_lock.write_lock(kb_home), make_client(kb_home) as c:  # a writer at work: start-up recovery waits
        health, stats = c.get("/health").json(), c.get("/stats").json()
        listed = c.get("/documents").json()["items"]
    assert (health["documents"], stats["documents"], sum(stats["by_kind"].values())) == (4, 4, 4)
    assert health["chunks"] == stats["chunks"] == sum(d["chunks"] for d in listed)


def test_ingested_uploads_are_deleted_and_others_age_out(client: TestClient, kb_home: Path) -> None:
    files = [("files", ("好.md", _doc(2, "好"), "text/markdown")), ("files", ("坏.txt", b"  ", "text/plain"))]
    job = wait_for(client, client.post("/documents", files=files).json()["job_id"])
    assert job["report"]["ingested"] == 1
    uploads = kb_home / "uploads"
    kept = [p for p in uploads.iterdir() if p.is_file()]
    assert [p.suffix for p in kept] == [".txt"]  # the failed one waits, for a look
    assert {d["source"] for d in client.get("/documents").json()["items"]} == {"好.md"}  # its name is kept
    old = time.time() - 8 * 86400
    for p in [kept[0], *(uploads / ".meta").iterdir()]:
        os.utime(p, (old, old))
    with make_client(kb_home):  # a restart: the sweep runs first in the job queue, and closing waits for it
        pass
    assert not kept[0].exists()
    assert [p.name for p in (uploads / ".meta").iterdir()] == [f"{_stored_name(kb_home)}.json"]  # 好.md's
    assert sweep(uploads, 0, in_use=lambda p: False) == 0  # 0 days = kept forever


def _stored_name(home: Path) -> str:
    m = Manifest(home / "manifest.sqlite3")
    try:
        return Path(m.doc_source(m.page_documents(None, "", 1)[1][0]["doc_id"]) or "").name
    finally:
        m.close()


def test_cli_refuses_a_file_over_the_passage_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_MAX_FILE_CHUNKS", "5")
    (tmp_path / "long.md").write_bytes(_doc(30, "长"))
    r = CliRunner().invoke(cli, ["ingest", str(tmp_path / "long.md")])
    assert r.exit_code == 1 and "failed: long.md: 8 passages, more than KB_MAX_FILE_CHUNKS=5" in r.stderr
