"""Record ids belong to their source (issue 19): a table row or JSONL line whose id is another file's document is
refused with a per-file error naming that document, unless the caller asks to replace it; replacements are listed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kb.cli import main as cli
from kb.index.manifest import Manifest
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import KEY, make_client, wait_for

PAPER = "# 沁水盆地煤层气排采制度研究\n\n## 1. 排采\n" + "".join(f"第{i}口煤层气井排采要控制井底流压缓慢下降，避免煤粉产出。"
                                                           for i in range(40)) + "\n"
NEED = {"id": "N-7", "kind": "need", "title": "集输管线漏气发现太晚", "description": "希望对管线实时监测，一有漏气就报警。",
        "field": "储运液化", "trl": 6}


def _jsonl(path: Path, *rows: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _doc(s: Settings, doc_id: str) -> tuple[str, str, int] | None:
    m = Manifest(s.manifest_path)
    try:
        row = m.document(doc_id)
        return None if row is None else (row["kind"], row["title"], len(m.chunk_ids(doc_id)))
    finally:
        m.close()


def test_a_table_row_cannot_take_a_papers_id(tmp_path: Path, settings: Settings) -> None:
    paper = tmp_path / "paper7.md"
    paper.write_text(PAPER, encoding="utf-8")
    assert ingest([paper], settings, kind="paper").ingested == 1
    before = _doc(settings, "paper7")
    assert before is not None and before[2] > 3
    csv = tmp_path / "projects.csv"
    csv.write_text("id,名称,内容\npaper7,压裂项目,清洁压裂液\nP-2,排采项目,排采制度\n", encoding="utf-8")
    rep = ingest([csv], settings)
    assert rep.ingested == 1 and rep.replaced == [] and _doc(settings, "paper7") == before  # the paper stays whole
    assert [(f.path, f.error) for f in rep.failed] == [(str(csv), (
        "projects.csv: id 'paper7' already belongs to document 'paper7' (paper «沁水盆地煤层气排采制度研究» from "
        "paper7.md); ingest with --replace (API: replace=true) to replace it"))]
    assert _doc(settings, "P-2") == ("project", "排采项目", 1)


def test_a_record_of_another_file_is_refused_then_replaced_on_request(tmp_path: Path, settings: Settings) -> None:
    first = _jsonl(tmp_path / "needs_a.jsonl", NEED)
    assert ingest([first], settings).ingested == 1
    other = _jsonl(tmp_path / "needs_b.jsonl", {**NEED, "title": "管线第三方破坏报警"})
    rep = ingest([other], settings)
    assert rep.ingested == 0 and len(rep.failed) == 1 and "id 'N-7' already belongs to document 'N-7' (need «集输管线漏气发现太晚» " \
        "from needs_a.jsonl)" in rep.failed[0].error
    assert _doc(settings, "N-7") == ("need", "集输管线漏气发现太晚", 1)
    rep = ingest([other], settings, replace=True)
    assert rep.ingested == 1 and rep.failed == []
    assert [r.model_dump() for r in rep.replaced] == [{"doc_id": "N-7", "title": "集输管线漏气发现太晚", "kind": "need",
                                                      "source": "needs_a.jsonl", "by": "needs_b.jsonl"}]
    assert _doc(settings, "N-7") == ("need", "管线第三方破坏报警", 1)


def test_a_files_own_records_still_change_and_two_files_in_one_batch_collide(tmp_path: Path, settings: Settings) -> None:
    own = _jsonl(tmp_path / "needs.jsonl", NEED)
    ingest([own], settings)
    _jsonl(own, {**NEED, "title": "改过的标题"})
    rep = ingest([own], settings)  # its own record: no collision
    assert (rep.ingested, rep.failed, rep.replaced) == (1, [], [])
    a, b = _jsonl(tmp_path / "a.jsonl", {**NEED, "id": "N-9"}), _jsonl(tmp_path / "b.jsonl", {**NEED, "id": "N-9", "title": "另一条"})
    rep = ingest([a, b], settings)  # both wait in one write batch: the second is still refused
    assert rep.ingested == 1 and [f.path for f in rep.failed] == [str(b)]
    assert _doc(settings, "N-9") == ("need", NEED["title"], 1)


def test_cli_replace_flag_and_json_report(tmp_path: Path, settings: Settings) -> None:
    ingest([_jsonl(tmp_path / "a.jsonl", NEED)], settings)
    b = _jsonl(tmp_path / "b.jsonl", {**NEED, "title": "新标题"})
    r = CliRunner().invoke(cli, ["ingest", str(b)])
    assert r.exit_code == 1 and "b.jsonl: id 'N-7' already belongs to document 'N-7'" in r.stderr
    r = CliRunner().invoke(cli, ["ingest", str(b), "--replace", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["replaced"] == [{"doc_id": "N-7", "title": "集输管线漏气发现太晚", "kind": "need",
                                                 "source": "a.jsonl", "by": "b.jsonl"}]
    r = CliRunner().invoke(cli, ["ingest", str(_jsonl(tmp_path / "c.jsonl", {**NEED, "title": "第三版"})), "--replace"])
    assert r.exit_code == 0 and "replaced: N-7 (need «新标题» from b.jsonl) by a record of c.jsonl" in r.stdout


def test_api_refuses_then_replaces_with_client_names(kb_home: Path) -> None:
    first = json.dumps(NEED, ensure_ascii=False).encode()
    second = json.dumps({**NEED, "title": "改版需求"}, ensure_ascii=False).encode()
    with make_client(kb_home) as c:
        c.headers["X-API-Key"] = KEY
        wait_for(c, c.post("/documents", files=[("files", ("需求.jsonl", first, "application/json"))]).json()["job_id"])
        job = wait_for(c, c.post("/documents", files=[("files", ("新需求.jsonl", second, "application/json"))]).json()["job_id"])
        assert job["status"] == "done" and job["report"]["ingested"] == 0 and job["report"]["replaced"] == []
        assert job["failed"] == [{"path": "新需求.jsonl", "error": "新需求.jsonl: id 'N-7' already belongs to document "
                                  "'N-7' (need «集输管线漏气发现太晚» from 需求.jsonl); ingest with --replace (API: "
                                  "replace=true) to replace it"}]
        resp = c.post("/documents", files=[("files", ("新需求.jsonl", second, "application/json"))], data={"replace": "true"})
        job = wait_for(c, resp.json()["job_id"])
        assert job["failed"] == [] and job["report"]["replaced"] == [
            {"doc_id": "N-7", "title": "集输管线漏气发现太晚", "kind": "need", "source": "需求.jsonl", "by": "新需求.jsonl"}]
        assert c.get("/documents/N-7").json()["title"] == "改版需求"
