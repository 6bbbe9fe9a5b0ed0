"""Write path: idempotency, replace-on-change, delete, and per-file errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest

from kb.index.bm25_search import load
from kb.index.manifest import Manifest
from kb.index.vectors import VectorStore, collection_for
from kb.ingest.pipeline import delete, ingest
from kb.settings import Settings

pytestmark = pytest.mark.usefixtures("store_backend")  # every scenario against the embedded store and a server


def _counts(s: Settings) -> tuple[int, int, int, int]:
    m = Manifest(s.manifest_path)
    docs, chunks = m.counts()
    m.close()
    lex = load(s.bm25_dir)
    return docs, chunks, VectorStore(collection_for(s)).count(), len(lex.ids) if lex else 0


def test_reingest_is_idempotent(mini_corpus: Path, settings: Settings) -> None:
    first = ingest([mini_corpus], settings)
    assert (first.ingested, first.skipped, first.failed) == (4, 0, [])
    before = _counts(settings)
    second = ingest([mini_corpus], settings)
    assert (second.ingested, second.skipped, second.chunks) == (0, 4, 0)
    assert _counts(settings) == before
    assert before[1] == before[2] == before[3] == first.chunks


def test_changed_file_replaces_all_its_chunks(mini_corpus: Path, settings: Settings) -> None:
    ingest([mini_corpus], settings)
    f = mini_corpus / "gas_use.md"
    f.write_text("# 低浓度瓦斯利用\n\n乏风瓦斯可以用蓄热氧化装置回收热量。", encoding="utf-8")
    rep = ingest([mini_corpus], settings)
    assert (rep.ingested, rep.skipped) == (1, 3)
    m = Manifest(settings.manifest_path)
    texts = [r["text"] for r in m.iter_chunks() if r["doc_id"] == "gas_use"]
    m.close()
    assert texts == ["乏风瓦斯可以用蓄热氧化装置回收热量。"]
    docs, chunks, vectors, bm25 = _counts(settings)
    assert chunks == vectors == bm25


def test_delete_removes_document_from_every_index(mini_corpus: Path, settings: Settings) -> None:
    ingest([mini_corpus], settings)
    docs, chunks, _, _ = _counts(settings)
    removed = delete("dewatering", settings)
    assert removed >= 1
    assert _counts(settings) == (docs - 1, chunks - removed, chunks - removed, chunks - removed)
    assert ingest([mini_corpus], settings).ingested == 1  # re-ingest brings it back


def _encrypted_pdf() -> bytes:
    w = pypdf.PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt("secret")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _blank_pdf() -> bytes:
    w = pypdf.PdfWriter()
    w.add_blank_page(200, 200)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


BAD_FILES = {
    "empty.txt": (b"", "empty file"),
    "locked.pdf": (_encrypted_pdf(), "encrypted"),
    "fake.pdf": (b"this is not a pdf at all", "not a PDF"),
    "scan.pdf": (_blank_pdf(), "no extractable text"),
    "data.bin": (b"\x00\x01", "unsupported file type"),
    "garbled.txt": (b"\xff\xfe\xff\x80\x80\xff" * 3 + b"\xff", "cannot decode"),
    "broken.docx": (b"PK\x03\x04 not really a zip", "not a readable .docx"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_reported_and_the_rest_go_in(name: str, mini_corpus: Path, tmp_path: Path,
                                                 settings: Settings) -> None:
    data, expected = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_bytes(data)
    rep = ingest([bad, mini_corpus], settings)
    assert rep.ingested == 4
    assert [f.path for f in rep.failed] == [str(bad)]
    assert expected in rep.failed[0].error and name in rep.failed[0].error


def test_missing_path_is_reported(settings: Settings, tmp_path: Path) -> None:
    rep = ingest([tmp_path / "nope.txt"], settings)
    assert "no such file" in rep.failed[0].error


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8-sig", "utf-16"])
def test_chinese_encodings_decode(encoding: str, tmp_path: Path, settings: Settings) -> None:
    f = tmp_path / f"enc_{encoding.replace('-', '_')}.txt"
    f.write_bytes("第一章 总则\n\n煤层气利用率达到95%以上。".encode(encoding))
    rep = ingest([f], settings)
    assert rep.failed == [] and rep.ingested == 1
    m = Manifest(settings.manifest_path)
    row = next(iter(m.iter_chunks()))
    assert row["text"] == "煤层气利用率达到95%以上。" and row["section"] == "第一章总则"


def test_table_rows_become_records_with_header_names(tmp_path: Path, settings: Settings) -> None:
    f = tmp_path / "projects.csv"
    f.write_text("id,名称,投资（万元）\nP1,幼儿园建设项目,29410\nP2,小学建设项目,45303\n", encoding="utf-8")
    rep = ingest([f], settings)
    assert (rep.ingested, rep.failed) == (2, [])
    m = Manifest(settings.manifest_path)
    doc = m.document("P1")
    texts = {r["doc_id"]: r["text"] for r in m.iter_chunks()}
    assert doc is not None and doc["kind"] == "project" and doc["title"] == "幼儿园建设项目"
    assert doc["meta"]["投资（万元）"] == "29410"
    assert texts["P1"] == "名称：幼儿园建设项目；投资（万元）：29410"


def test_bad_record_rows_are_rejected_by_row(tmp_path: Path, settings: Settings) -> None:
    rows = [
        {"id": "R1", "kind": "result", "title": "清洁压裂液", "description": "低伤害清洁压裂液体系。", "trl": 7},
        {"id": "R2", "kind": "result", "title": "无描述"},
        {"id": "R3", "kind": "result", "title": "超范围", "description": "某技术。", "trl": 12},
    ]
    f = tmp_path / "results.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", encoding="utf-8")
    rep = ingest([f], settings)
    assert rep.ingested == 1
    errors = [x.error for x in rep.failed]
    assert any("line 2" in e and "missing description" in e for e in errors)
    assert any("line 3" in e and "trl 12 outside 1-9" in e for e in errors)
    assert any("line 4" in e and "invalid JSON" in e for e in errors)


def test_folder_walk_skips_readme_hidden_and_kbignore(mini_corpus: Path, settings: Settings) -> None:
    (mini_corpus / "README.md").write_text("# 说明\n\n本文件夹的说明。", encoding="utf-8")
    (mini_corpus / ".hidden.md").write_text("# 隐藏\n\n不应入库。", encoding="utf-8")
    (mini_corpus / "drafts").mkdir()
    (mini_corpus / "drafts" / "draft.md").write_text("# 草稿\n\n不应入库。", encoding="utf-8")
    (mini_corpus / ".kbignore").write_text("drafts/\n", encoding="utf-8")
    rep = ingest([mini_corpus], settings)
    assert (rep.ingested, rep.failed) == (4, [])


def test_new_chunk_settings_rechunk_on_reingest(mini_corpus: Path, settings: Settings) -> None:
    ingest([mini_corpus], settings)
    smaller = settings.model_copy(update={"chunk_size": 60, "chunk_overlap": 10})
    rep = ingest([mini_corpus], smaller)
    assert rep.ingested >= 1 and rep.failed == []
    docs, chunks, vectors, bm25 = _counts(smaller)
    assert chunks == vectors == bm25
