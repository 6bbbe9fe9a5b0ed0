"""Folder sync: ``kb sync DIR [--delete] [--watch]`` adds, replaces and removes; a killed sync resumes; watch reacts."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.index import bm25_search
from kb.index.check import check
from kb.index.manifest import Manifest
from kb.index.recovery import recover_if_needed
from kb.index.vectors import VectorStore, collection_for
from kb.ingest.sync import last, sync
from kb.settings import Settings
from tests.utils import KEY, MINI_DOCS, ROOT, error, make_client, write_docs

NEW = "# 煤层气压裂\n\n## 1. 清洁压裂液\n沁水盆地高煤阶煤储层采用清洁压裂液体系进行水力压裂，支撑剂采用石英砂。\n"


def _sync(*args: str) -> tuple[int, dict[str, Any], str]:
    r = CliRunner().invoke(main, ["sync", *args, "--json"])
    return r.exit_code, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


def _doc_ids(s: Settings) -> set[str]:
    m = Manifest(s.manifest_path)
    try:
        return {r["doc_id"] for r in m.page_documents(None, "", 1000)[1]}
    finally:
        m.close()


def test_add_change_delete(tmp_path: Path, settings: Settings) -> None:
    folder = write_docs(tmp_path / "shared", MINI_DOCS)
    (folder / "setup.exe").write_bytes(b"MZ")  # not a document: ignored, not a failure
    code, first, _ = _sync(str(folder))
    assert code == 0 and first["root"] == str(folder.resolve())
    assert (first["added"], first["changed"], first["unchanged"]) == (sorted(MINI_DOCS), [], 0)
    assert (first["ignored"], first["failed"], first["ingested"], first["files"]) == (["setup.exe"], [], 4, 4)

    (folder / "dewatering.md").write_text(MINI_DOCS["dewatering.md"] + "\n## 2. 见气\n套压上升后进入产气阶段。\n", encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "fracturing.md").write_text(NEW, encoding="utf-8")
    (folder / "gas_use.md").unlink()
    code, second, _ = _sync(str(folder))
    assert code == 0
    assert (second["added"], second["changed"], second["unchanged"]) == (["sub/fracturing.md"], ["dewatering.md"], 2)
    assert (second["missing"], second["removed"], second["deleted"]) == (["gas_use.md"], [], 0)
    assert _doc_ids(settings) == {"horizontal", "dewatering", "gas_use", "lng_en", "fracturing"}  # kept without --delete

    code, third, _ = _sync(str(folder), "--delete")
    assert code == 0 and (third["removed"], third["missing"], third["deleted"], third["unchanged"]) == (["gas_use.md"], [], 1, 4)
    assert _doc_ids(settings) == {"horizontal", "dewatering", "lng_en", "fracturing"}
    hits = CliRunner().invoke(main, ["search", "低浓度瓦斯发电", "--json"]).stdout
    assert "gas_use" not in {h["doc_id"] for h in json.loads(hits)["hits"]}
    assert check(settings).ok

    code, again, _ = _sync(str(folder), "--delete")  # nothing left to do
    assert (again["added"], again["changed"], again["removed"], again["unchanged"], again["ingested"]) == ([], [], [], 4, 0)


def test_last_summary_is_served_by_the_api(tmp_path: Path, settings: Settings) -> None:
    with make_client(settings.home) as c:
        error(c.get("/sync/last"), 404, "not_found")
    folder = write_docs(tmp_path / "shared", {"horizontal.md": MINI_DOCS["horizontal.md"]})
    summary = sync(folder, settings)
    with make_client(settings.home, public_read=False) as c:
        error(c.get("/sync/last"), 401)
        body = c.get("/sync/last", headers={"X-API-Key": KEY}).json()
    assert body == json.loads(summary.model_dump_json()) and body["added"] == ["horizontal.md"]
    assert last(settings) == summary


def test_a_moved_file_keeps_its_document_and_a_bad_file_fails_alone(tmp_path: Path, settings: Settings) -> None:
    folder = write_docs(tmp_path / "shared", MINI_DOCS)
    sync(folder, settings)
    (folder / "archive").mkdir()
    shutil.move(folder / "lng_en.md", folder / "archive" / "lng_en.md")
    (folder / "broken.docx").write_bytes(b"not a zip")
    code, out, err = _sync(str(folder), "--delete")
    assert code == 1 and [f["path"] for f in out["failed"]] == [str(folder / "broken.docx")] and "failed:" not in err
    assert (out["added"], out["removed"]) == (["archive/lng_en.md"], ["lng_en.md"])
    assert _doc_ids(settings) == {"horizontal", "dewatering", "gas_use", "lng_en"}  # the same id, not lng_en-<hash>


def test_the_index_inside_the_folder_is_not_content_and_uploads_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_docs(tmp_path / "shared", {"horizontal.md": MINI_DOCS["horizontal.md"]})
    s = Settings(home=folder / "kbdata")
    with make_client(s.home) as c:  # an upload lands in KB_HOME/uploads, inside the synced folder
        resp = c.post("/documents", files=[("files", ("压裂.md", NEW.encode(), "text/markdown"))], headers={"X-API-Key": KEY})
        job = resp.json()["job_id"]
        deadline = time.monotonic() + 60
        while c.get(f"/jobs/{job}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    summary = sync(folder, s, delete=True)
    assert (summary.added, summary.removed, summary.ignored) == (["horizontal.md"], [], [])
    assert len(_doc_ids(s)) == 2  # the upload and horizontal


def test_a_file_path_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "one.md"
    f.write_text("# x\n\ny", encoding="utf-8")
    r = CliRunner().invoke(main, ["sync", str(f)])
    assert r.exit_code == 2 and "is a file" in r.stderr


# ---- kill -9 in the middle of a sync, then run it again -------------------------------------------------

CHILD = ("import sys; from tests.utils import crash_child_setup; crash_child_setup(); "
         "from kb.cli import main; main(sys.argv[1:])")


def _revise(folder: Path) -> None:
    """Every kind of change at once: a changed file, a new one, a removed one, a moved one, a bigger plan."""
    (folder / "dewatering.md").write_text(MINI_DOCS["dewatering.md"] + "\n## 2. 见气\n套压上升后进入产气阶段。\n", encoding="utf-8")
    (folder / "fracturing.md").write_text(NEW, encoding="utf-8")
    (folder / "gas_use.md").unlink()
    (folder / "old").mkdir(exist_ok=True)
    shutil.move(folder / "lng_en.md", folder / "old" / "lng_en.md")
    plan = (ROOT / "corpus/plan/qinshui_plan.txt").read_text(encoding="utf-8")
    (folder / "0-plan").mkdir(exist_ok=True)  # read first: its ~100 chunks are one write batch, the rest another
    (folder / "0-plan" / "qinshui_plan.txt").write_text(plan + "\n\n第九十九章 同步测试\n\n新增内容。\n", encoding="utf-8")


def _snapshot(s: Settings, folder: Path) -> dict[str, Any]:
    m = Manifest(s.manifest_path)
    try:
        docs = {r[0]: (r[1], r[2], Path(r[3]).relative_to(folder).as_posix())
                for r in m.db.execute("SELECT doc_id, fingerprint, n_chunks, source FROM documents")}
        files = {Path(r[0]).relative_to(folder).as_posix(): r[1] for r in m.db.execute("SELECT path, file_hash FROM files")}
        chunks = sorted(str(r[0]) for r in m.db.execute("SELECT chunk_id FROM chunks"))
    finally:
        m.close()
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # Chroma as it is on disk, not as this process last saw it
    vectors = sorted(VectorStore(collection_for(s)).ids())
    SharedSystemClient.clear_system_cache()
    lex = bm25_search.load(s.bm25_dir)
    return {"docs": docs, "files": files, "chunks": chunks, "vectors": vectors, "bm25": sorted(lex.ids) if lex else []}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_upsert", "after_commit", "before_publish"])
def test_kill_9_mid_sync_then_the_next_sync_finishes_it(point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_WRITE_BATCH", "16")  # several batches, so a kill lands between them
    folder = write_docs(tmp_path / "shared", MINI_DOCS)
    s = Settings(home=tmp_path / "home")
    sync(folder, s)
    _revise(folder)
    env = {**os.environ, "KB_HOME": str(s.home), "CBM_TEST_CRASH_AT": point}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "sync", str(folder), "--delete", "-q"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert recover_if_needed(s) != []  # what the API does on start: the interrupted write is repaired
    assert check(s).ok
    again = sync(folder, s, delete=True)  # the re-run completes the job
    assert again.failed == []
    clean = Settings(home=tmp_path / "clean")
    sync(folder, clean, delete=True)
    assert _snapshot(s, folder) == _snapshot(clean, folder)
    assert check(s).ok


# ---- --watch ----------------------------------------------------------------------------------------------

def _lines(proc: subprocess.Popen[str]) -> queue.Queue[dict[str, Any]]:
    out: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                out.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    return out


def _next(lines: queue.Queue[dict[str, Any]], want: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            summary = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if summary["added"] or summary["removed"] or summary["changed"] or want == "first":
            return summary
    raise AssertionError(f"no sync summary ({want}) within {timeout} s")


@pytest.mark.slow  # filesystem events and their debounce delay
def test_watch_picks_up_a_new_file_and_a_removed_one(tmp_path: Path, kb_home: Path) -> None:
    """The new file is written the moment the first sync reports: the watcher is live before that sync."""
    folder = write_docs(tmp_path / "shared", {"horizontal.md": MINI_DOCS["horizontal.md"]})
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "sync", str(folder), "--watch", "--delete", "--json",
                             "--debounce", "0.3"], cwd=ROOT, env={**os.environ, "KB_HOME": str(kb_home)},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = _lines(proc)
        assert _next(lines, "first")["added"] == ["horizontal.md"]
        (folder / "fracturing.md").write_text(NEW, encoding="utf-8")
        assert _next(lines, "the new file")["added"] == ["fracturing.md"]
        (folder / "horizontal.md").unlink()
        assert _next(lines, "the removal")["removed"] == ["horizontal.md"]
        for name in ("dewatering.md", "gas_use.md", "lng_en.md"):  # a burst: one sync, not three
            (folder / name).write_text(MINI_DOCS[name], encoding="utf-8")
        assert _next(lines, "the burst")["added"] == ["dewatering.md", "gas_use.md", "lng_en.md"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert _doc_ids(Settings(home=kb_home)) == {"fracturing", "dewatering", "gas_use", "lng_en"}
