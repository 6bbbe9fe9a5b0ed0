"""Hostile and broken input: every bad file is a clear per-file failure, every bad request a 4xx.

Files go through ``ingest`` in one batch with good files, which must still go in; PDFs are parsed
in a child process that a time limit really kills; queries, filters and uploads go through the
API and the CLI.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kb.cli import main as cli
from kb.errors import ExtractionError
from kb.index.manifest import Manifest
from kb.ingest.pipeline import ingest
from kb.ingest.readers import ReadContext, read_file
from kb.ingest.readers.zipcheck import MAX_ZIP_MEMBERS, zip_bomb_reason
from kb.ingest.sandbox import close_workers
from kb.search.hybrid import Searcher
from kb.settings import Settings, get_settings
from tests.utils import KEY, MINI_DOCS, ROOT, error, make_client, wait_for

# ---- hostile files, built here ----------------------------------------------------------------------


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from object bodies 1..n with a correct xref table (catalog = object 1)."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _stream(content: bytes) -> bytes:
    packed = zlib.compress(content, 9)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"


def page_pdf(content: bytes, resources: bytes = b"/Font << /F1 5 0 R >>", extra: bytes | None = None) -> bytes:
    """One page drawing ``content``; object 5 is Helvetica unless ``extra`` replaces it."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Contents 4 0 R /Resources << " + resources + b" >> >>",
        _stream(content),
        extra or b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


TEXT_PDF = page_pdf(b"BT /F1 12 Tf 10 200 Td (Drainage control) Tj 0 -20 Td "
                    b"(Keep the bottom hole pressure falling slowly during dewatering.) Tj ET")
IMAGE_PDF = page_pdf(b"q 100 0 0 100 50 50 cm /Im1 Do Q", b"/XObject << /Im1 5 0 R >>",
                     b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray "
                     b"/BitsPerComponent 8 /Length 4 >>\nstream\n\x00\xff\xff\x00\nendstream")
# a 28 KB page whose content stream inflates to a million text operators: pypdf works on it for minutes
SLOW_PDF = page_pdf(b"BT /F1 12 Tf " + b"(x) Tj 1 0 Td " * 1_000_000 + b"ET")


def _encrypted_pdf() -> bytes:
    w = pypdf.PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt("secret")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _self_referencing_pdf() -> bytes:
    """The page tree lists itself as its own kid."""
    return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"])


def zip_bomb(member: str, size: int, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip whose ``member`` inflates from a few KB to ``size`` bytes of zeros (built by streaming)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        with zf.open(member, "w", force_zip64=True) as f:
            block = b"\x00" * (1 << 20)
            for _ in range(size >> 20):
                f.write(block)
    return buf.getvalue()


def _xlsx_bomb() -> bytes:
    """A real workbook whose first sheet is replaced by 64 MB of zeros packed 1000:1."""
    wb = openpyxl.Workbook()
    wb.active.append(["id", "name"])
    good = io.BytesIO()
    wb.save(good)
    with zipfile.ZipFile(good) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n != "xl/worksheets/sheet1.xml"}
    return zip_bomb("xl/worksheets/sheet1.xml", 64 << 20, extra=parts)


ZH = "第一章 总则\n\n沁水盆地煤层气利用率达到95%以上，排采控制井底流压缓慢下降。"
RARE = "第二章 稀见字\n\n𠮷野家门店旁的𪚥字碑记录了瓦斯抽采历史🔥，煤层气产量⛽稳定。"

# name -> (bytes, expected substring of the failure; None = must be ingested)
BATCH: dict[str, tuple[bytes, str | None]] = {
    "empty.pdf": (b"", "empty file"),
    "truncated.pdf": ((ROOT / "corpus" / "papers" / "dewatering_zh.pdf").read_bytes()[:60000], "unreadable PDF"),
    "header_only.pdf": (b"%PDF-1.7\n", "unreadable PDF"),
    "locked.pdf": (_encrypted_pdf(), "encrypted"),
    "scan.pdf": (IMAGE_PDF, "no extractable text"),
    "html.pdf": (b"<!doctype html><title>not a pdf</title>", "not a PDF file"),
    "cyclic_pages.pdf": (_self_referencing_pdf(), "cyclic"),
    "text.pdf": (TEXT_PDF, None),
    "gb18030.txt": (ZH.replace("总则", "总则·𠀀").encode("gb18030"), None),
    "gbk.txt": (ZH.encode("gbk"), None),
    "bom.txt": (ZH.encode("utf-8-sig"), None),
    "utf16.txt": (ZH.encode("utf-16"), None),
    "utf16le_nobom.txt": (ZH.encode("utf-16-le"), None),
    "stray_nul.md": (ZH.replace("利用率", "利用\x00率").encode(), None),
    "rare.txt": (RARE.encode(), None),
    "binary.txt": (bytes(range(256)) * 64, "cannot decode text"),
    "elf.md": (b"\x7fELF\x02\x01\x01" + b"\x00" * 40 + bytes(range(1, 256)) * 4, "binary data (40 NUL bytes)"),
    "only_nul.txt": (b"\x00" * 4096, "binary data"),
    "bomb.xlsx": (_xlsx_bomb(), "zip bomb"),
    "bomb.docx": (zip_bomb("word/document.xml", 32 << 20), "zip bomb"),
    "fake.xlsx": (b"PK\x03\x04 not a zip at all", "not a readable .xlsx"),
    "huge_field.csv": (b"id,name\n1," + b"x" * 200_000 + b"\n", None),  # a long cell is text to chunk
}


def _chunks(settings: Settings) -> list[dict[str, Any]]:
    m = Manifest(settings.manifest_path)
    try:
        return [dict(r) for r in m.iter_chunks()]
    finally:
        m.close()


@pytest.mark.slow  # every parser in its sandbox, hostile PDFs through OCR: 2-3 minutes on 2 cores
def test_hostile_files_fail_one_by_one_and_the_rest_go_in(tmp_path: Path, mini_corpus: Path,
                                                          settings: Settings) -> None:
    bad = tmp_path / "hostile"
    bad.mkdir()
    for name, (data, _) in BATCH.items():
        (bad / name).write_bytes(data)
    start = time.monotonic()
    rep = ingest([bad, mini_corpus], settings)
    failed = {Path(f.path).name: f.error for f in rep.failed}
    for name, (_, expected) in BATCH.items():
        if expected is None:
            assert name not in failed, failed.get(name)
        else:
            assert expected in failed.get(name, ""), (name, failed.get(name))
            assert failed[name].startswith(name)  # the message names the file
    assert set(failed) == {n for n, (_, e) in BATCH.items() if e is not None}
    assert rep.ingested == len(MINI_DOCS) + sum(e is None for _, e in BATCH.values())
    assert time.monotonic() - start < 300
    texts = {r["doc_id"]: r["text"] for r in _chunks(settings)}
    for enc in ("gb18030", "gbk", "bom", "utf16", "utf16le_nobom", "stray_nul"):
        assert texts[enc] == "沁水盆地煤层气利用率达到95%以上，排采控制井底流压缓慢下降。", enc
    assert texts["rare"] == "𠮷野家门店旁的𪚥字碑记录了瓦斯抽采历史🔥，煤层气产量⛽稳定。"
    assert "bottom hole pressure" in texts["text"]
    searcher = Searcher(settings)
    try:
        for method in ("bm25", "hybrid"):
            assert searcher.search("𠮷野家 𪚥字碑", top_k=1, method=method).hits[0].doc_id == "rare"
        assert searcher.search("排采控制井底流压", top_k=10, filters={"source": "gbk.txt"}).hits[0].doc_id == "gbk"
    finally:
        searcher.close()


def _children() -> list[int]:
    """Live child processes of this process (Linux /proc)."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


class _SpyPopen(subprocess.Popen):  # type: ignore[type-arg]
    made: list[subprocess.Popen] = []  # type: ignore[type-arg]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _SpyPopen.made.append(self)


@pytest.mark.slow  # waits out a parser's time limit
@pytest.mark.timeout(120)
def test_pdf_that_keeps_the_parser_busy_is_killed_at_the_time_limit(
        tmp_path: Path, mini_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_PARSE_TIMEOUT_S", "1.5")
    get_settings.cache_clear()
    close_workers()  # a worker an earlier test left idle would parse slow.pdf unseen by the spy
    monkeypatch.setattr(subprocess, "Popen", _SpyPopen)
    _SpyPopen.made.clear()
    slow = tmp_path / "slow.pdf"
    slow.write_bytes(SLOW_PDF)
    assert len(SLOW_PDF) < 30_000
    start = time.monotonic()
    rep = ingest([slow, mini_corpus / "dewatering.md"], get_settings())
    took = time.monotonic() - start
    assert [f.error for f in rep.failed] == [
        "slow.pdf: parsing took longer than 1.5 s and was stopped (KB_PARSE_TIMEOUT_S); "
        "the file may be malformed or too large"]
    assert rep.ingested == 1  # the good file of the batch went in
    # the first parser worker took slow.pdf (the first file) and was killed; a fresh one read the good file
    child, *_ = [p for p in _SpyPopen.made if "kb.ingest.sandbox_child" in p.args]
    assert child.returncode == -signal.SIGKILL  # a real process, really killed
    assert child.pid not in _children()
    assert took < 60


def test_pdf_worker_reads_a_good_pdf_and_reports_its_errors() -> None:
    [doc], _ = read_file(Path("text.pdf"), TEXT_PDF, ReadContext(ocr=False))
    assert doc.title == "Drainage control" and "bottom hole pressure" in doc.sections[0].text
    with pytest.raises(ExtractionError, match="^x.pdf: unreadable PDF"):
        read_file(Path("x.pdf"), b"%PDF-1.4\n" + bytes(range(256)) * 8, ReadContext())


def test_zip_bomb_limits_are_checked_from_the_directory() -> None:
    assert zip_bomb_reason([(10 << 20, 2 << 20), (5000, 10)]) is None  # 5x, and a tiny 500x member
    assert zip_bomb_reason([(64 << 20, 64 << 10)]) == "a member expands 1024x (limit 200x)"
    assert zip_bomb_reason([(600 << 20, 300 << 20)] * 2) == "1200 MB uncompressed (limit 1024 MB)"
    assert zip_bomb_reason([(1, 1)] * (MAX_ZIP_MEMBERS + 1)) == f"{MAX_ZIP_MEMBERS + 1} members (limit {MAX_ZIP_MEMBERS})"


def test_bad_rows_are_reported_and_do_not_stop_the_file(tmp_path: Path, settings: Settings) -> None:
    f = tmp_path / "needs" / "records.jsonl"
    f.parent.mkdir()
    f.write_text("\n".join([
        '{"id": "N1", "title": "排采", "description": "控制井底流压缓慢下降"}',
        "[" * 100_000,
        '{"id": "N2", "title": "t", "description": "d", "trl": 1e400}',
        '{"id": "N3", "title": {"$ne": 1}, "description": ["a", "b"]}',
        "\x00\x00",
    ]), encoding="utf-8")
    rep = ingest([f], settings)
    errors = [x.error for x in rep.failed]
    assert rep.ingested == 2  # N1, and N3 whose odd values are kept as text
    assert len(errors) == 3
    assert errors[0].startswith("records.jsonl line 2: invalid JSON (maximum recursion depth")
    assert errors[1].startswith("records.jsonl line 5: invalid JSON")
    assert errors[2] == "records.jsonl line 3 (id N2): trl inf is not a number 1-9"


# ---- big text, with a hash embedder: this is about reading and chunking, not the model ----------------


@pytest.mark.slow  # 10 MB through the whole write path
@pytest.mark.timeout(300)
def test_ten_megabyte_file_and_one_megabyte_line(tmp_path: Path, kb_home: Path) -> None:
    para = "沁水盆地高煤阶煤层渗透率低，多分支水平井可以扩大泄气面积。樊庄区块应用多分支水平井后单井日产气量明显提高。"
    big = tmp_path / "big.txt"
    body = "\n".join(f"{n:06d}{para}" for n in range(10 * 1024 * 1024 // len(para.encode())))
    big.write_text("大文件\n\n" + body + "\n末尾标记：寿阳区块二氧化碳驱替试验。", encoding="utf-8")
    line = tmp_path / "line.txt"
    # numbered, so that no two 4000-character pieces are alike (a document keeps one chunk per distinct text)
    zh = str.maketrans("0123456789", "〇一二三四五六七八九")  # numbered in CJK digits: still 3 bytes a character
    line.write_text("".join(f"第{str(i).translate(zh)}段一行到底的排采记录" for i in range(30_000))[:340_000]
                    + "单行末尾：樊庄压裂返排液处理。", encoding="utf-8")
    assert big.stat().st_size > 10_000_000 and line.stat().st_size > 1_000_000 and "\n" not in line.read_text()
    s = Settings(home=kb_home, chunk_size=4000, chunk_overlap=100)
    start = time.monotonic()
    rep = ingest([big, line], s)
    took = time.monotonic() - start
    assert rep.failed == [] and rep.ingested == 2
    rows = _chunks(s)
    assert sum(r["doc_id"] == "line" for r in rows) == 86  # 340,015 characters in 4000-character pieces
    assert max(len(r["text"]) for r in rows) <= 4000
    searcher = Searcher(s)
    try:
        assert searcher.search("二氧化碳驱替", top_k=1, method="bm25").hits[0].doc_id == "big"
        assert searcher.search("压裂返排液", top_k=1, method="bm25").hits[0].doc_id == "line"
    finally:
        searcher.close()
    assert took < 240


# ---- queries and filters: API and CLI -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.utils import write_market_corpus

    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    assert ingest([write_market_corpus(root / "corpus")], Settings(home=home)).failed == []
    return home


@pytest.fixture
def api(hostile_home: Path) -> Iterator[TestClient]:
    with make_client(hostile_home) as c:
        c.headers["X-API-Key"] = KEY
        yield c


LONG = "煤层气" * 3400  # 10,200 characters
BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("post", "/search", {"query": ""}, 422, "validation_error"),
    ("post", "/search", {"query": "   "}, 400, "bad_query"),
    ("post", "/search", {"query": LONG}, 422, "validation_error"),
    ("post", "/search", {"query": "。，！？……——《》"}, 400, "bad_query"),
    ("post", "/search", {"query": "\x00\x00"}, 400, "bad_query"),
    ("post", "/search", {"query": "煤层气", "filters": {"$where": "1 == 1"}}, 400, "bad_filter"),
    ("post", "/search", {"query": "煤层气", "filters": {"kind": "$ne"}}, 400, "bad_filter"),
    ("post", "/search", {"query": "煤层气", "filters": {"doc_id": {"$ne": "x"}}}, 422, "validation_error"),
    ("post", "/search", {"query": "煤层气", "filters": {"source": {"$in": ["a"]}}}, 422, "validation_error"),
    ("post", "/search", {"query": "煤层气", "filters": {"$and": [{"kind": "plan"}]}}, 422, "validation_error"),
    ("post", "/search", {"query": "煤层气", "filters": {"colour": "red"}}, 400, "bad_filter"),
    ("post", "/search", {"query": "煤层气", "filters": {"year": "2023 OR 1=1"}}, 400, "bad_filter"),
    ("post", "/search", {"query": "煤层气", "filters": {"doc_id": "a\x00b"}}, 400, "bad_filter"),
    ("post", "/search", {"query": "煤层气", "filters": {"field": "x" * 500}}, 400, "bad_filter"),
    ("post", "/search", {"query": "煤层气", "filters": {"kind": True}}, 422, "validation_error"),
    ("post", "/search", {"query": "煤层气", "filters": {"source": -5}}, 422, "validation_error"),
    ("post", "/ask", {"question": ""}, 422, "validation_error"),
    ("post", "/ask", {"question": "？？？！！！"}, 400, "bad_query"),
    ("post", "/ask", {"question": LONG}, 422, "validation_error"),
    ("post", "/match", {"text": "。。。"}, 400, "bad_query"),
    ("post", "/match", {"text": ""}, 400, "bad_query"),
    ("post", "/match", {"need_id": "$ne"}, 404, "not_found"),
    ("post", "/match", {"need_id": "N101", "text": "x"}, 400, "bad_input"),
    ("post", "/match", {"text": LONG}, 422, "validation_error"),
    ("post", "/match", {"text": "排采", "field": "  "}, 400, "bad_input"),
    ("post", "/match/batch", {"need_ids": ["$where"]}, 404, "not_found"),
    ("post", "/match/batch", {"need_ids": [{"$ne": 1}]}, 422, "validation_error"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_REQUESTS)
def test_bad_queries_are_4xx_with_a_clear_error(api: TestClient, method: str, path: str, body: dict[str, Any],
                                                status: int, code: str) -> None:
    message = error(getattr(api, method)(path, json=body), status, code)
    assert 5 < len(message) < 1000


@pytest.mark.parametrize("query", ["$where", "' OR 1=1 --", "{\"$ne\": null}", "煤层气'; DROP TABLE chunks; --",
                                   "<script>alert(1)</script>", "%00", "\\u0000", "*", "𠮷" * 2000])
def test_injection_looking_queries_are_just_text(api: TestClient, query: str) -> None:
    resp = api.post("/search", json={"query": query, "filters": {"section": "' OR '1'='1"}})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        assert resp.json()["hits"] == []  # no section starts with that text: the filter held
    resp = api.post("/search", json={"query": query, "top_k": 3})
    assert resp.status_code in (200, 400), resp.text
    assert api.get("/stats").json()["documents"] == 14  # nothing was dropped


CLI_CASES: list[tuple[list[str], str]] = [
    (["search", ""], "error: query is empty"),
    (["search", "。！？"], "error: query is empty"),
    (["search", "煤层气", "--filter", "$where=1"], "error: unknown filter '$where'"),
    (["search", "煤层气", "--filter", "kind=$ne"], "error: filter 'kind' has an invalid value '$ne'"),
    (["search", "煤层气", "--filter", "nokey"], "error: filter 'nokey' is not key=value"),
    (["search", "煤层气", "--filter", "year=1 OR 1"], "error: year must be a number"),
    (["match", "--text", "？？"], "error: query is empty"),
    (["match", "--need-id", "$ne"], "error: no need with id"),
]


def test_cli_bad_queries_are_one_clear_line(hostile_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_HOME", str(hostile_home))
    get_settings.cache_clear()
    runner = CliRunner()
    for args, expected in CLI_CASES:
        r = runner.invoke(cli, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith(expected) and r.stderr.count("\n") == 1, (args, r.stderr)
    r = runner.invoke(cli, ["search", LONG, "--json", "-k", "1"])  # long queries are cut, not refused
    assert r.exit_code == 0 and '"hits"' in r.stdout


# ---- uploads ----------------------------------------------------------------------------------------

NEW_DOC = "# 煤层气压裂\n\n## 1. 清洁压裂液\n沁水盆地高煤阶煤储层采用清洁压裂液体系进行水力压裂。\n".encode()


@pytest.fixture
def writer(kb_home: Path, mini_corpus: Path) -> Iterator[TestClient]:
    assert ingest([mini_corpus], Settings(home=kb_home)).failed == []
    with make_client(kb_home, keep_ingested_uploads=True) as c:  # the tests look at the stored files
        c.headers["X-API-Key"] = KEY
        yield c


def raw_multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body with file names sent byte for byte (httpx would percent-encode NUL and control characters)."""
    boundary = "kbtestboundary7d3f"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{n}"\r\n'
             "Content-Type: text/markdown\r\n\r\n".encode() + data + b"\r\n" for n, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_hostile_upload_names_stay_inside_uploads(writer: TestClient, kb_home: Path, tmp_path: Path) -> None:
    names = {"../../../../etc/evil1.md": "evil1.md", "/etc/evil2.md": "evil2.md",
             "C:\\Windows\\System32\\evil3.md": "evil3.md", "..\\..\\evil4.md": "evil4.md",
             "ev\x00il5.md": "evil5.md", "ev\til\x7f6.md": "evil6.md", "./.hidden7.md": ".hidden7.md"}
    body, ctype = raw_multipart([(n, NEW_DOC + str(i).encode()) for i, n in enumerate(names)])
    resp = writer.post("/documents", content=body, headers={"Content-Type": ctype})
    assert resp.status_code == 202, resp.text
    job = wait_for(writer, resp.json()["job_id"], timeout=120)
    assert job["status"] == "done" and job["failed"] == []
    assert sorted(job["files"]) == sorted(names.values())
    stored = sorted(p.name for p in (kb_home / "uploads").iterdir() if p.is_file())
    assert len(stored) == len(names) and all(n.startswith("up-") and n.endswith(".md") for n in stored)
    assert not [p for p in tmp_path.parent.rglob("evil*")]
    assert not [p for p in tmp_path.parent.rglob(".hidden7.md")]


def test_refused_upload_names_and_bodies(writer: TestClient) -> None:
    for name in ("..", "/", "", "\x00", "evil.md\x00.exe", "noext"):
        resp = writer.post("/documents", files=[("files", (name, b"# x", "text/markdown"))])
        assert resp.status_code in (415, 422), (name, resp.text)
        assert set(resp.json()) == {"error"}
    error(writer.post("/documents", content=b"# just text", headers={"Content-Type": "text/markdown"}), 422)
    error(writer.post("/documents", json={"files": ["a.md"]}), 422)
    error(writer.post("/documents", content=b"--b\r\n\r\n", headers={"Content-Type": "multipart/form-data"}), 400)


@pytest.mark.slow  # parser children killed at their limits
def test_wrong_content_types_and_a_zip_bomb_fail_in_the_job(writer: TestClient) -> None:
    files = [("files", ("report.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "application/pdf")),
             ("files", ("notes.md", TEXT_PDF, "text/markdown")),
             ("files", ("table.xlsx", b"id,name\n1,x\n", "text/csv")),
             ("files", ("sheet.xlsx", _xlsx_bomb(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
             ("files", ("real.md", NEW_DOC, "application/pdf"))]  # a good file under a wrong type: goes in
    start = time.monotonic()
    resp = writer.post("/documents", files=files)
    job = wait_for(writer, resp.json()["job_id"], timeout=120)
    assert job["status"] == "done" and job["report"]["ingested"] == 1
    failed = {f["path"]: f["error"] for f in job["failed"]}
    assert failed["report.pdf"] == "report.pdf: not a PDF file (no %PDF header)"
    assert failed["notes.md"] == "notes.md: binary data (31 NUL bytes), not a text file" or \
        "cannot decode" in failed["notes.md"] or "no extractable text" in failed["notes.md"]
    assert failed["table.xlsx"] == "table.xlsx: not a readable .xlsx file (BadZipFile)"
    assert failed["sheet.xlsx"] == "sheet.xlsx: refused, looks like a zip bomb: a member expands 1000x (limit 200x)" \
        or failed["sheet.xlsx"].startswith("sheet.xlsx: refused, looks like a zip bomb: a member expands")
    assert time.monotonic() - start < 60
    hits = writer.post("/search", json={"query": "清洁压裂液", "top_k": 1}).json()["hits"]
    assert hits and hits[0]["title"] == "煤层气压裂"
