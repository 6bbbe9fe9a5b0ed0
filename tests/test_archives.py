"""Real-archive material end to end: web notices, Word 97 and Excel 97 files, slides, headerless GBK tables,
refused formats, personal data, near-duplicates, and (slow) scans and broken text layers that need OCR.

Fixtures are made here or in tests/fixtures (make_fixtures.py says how); every file goes through
``ingest`` (so through the parser's child process) and is looked for with ``Searcher``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docx
import pptx
import pytest

from bench.pages import garbage_layer, image_pdf, render_page, scan, spaced_layer
from kb.index.manifest import Manifest
from kb.ingest.ocr import ocr_image
from kb.ingest.pipeline import ingest
from kb.lang.pii import EMAIL, PHONE
from kb.search.hybrid import Searcher
from kb.settings import Settings, get_settings
from tests.utils import KEY, ROOT, make_client

FIXTURES = ROOT / "tests" / "fixtures"
STANDARD = """煤层气井排采作业规程
4.2.3 单相水流阶段井底流压日降幅不应超过0.05MPa，套压出现后日降幅不应超过0.02MPa。
煤层含气量测定采用解吸法，实测含气量为12.6m3/t，渗透率为0.85mD，孔隙度为4.2%。
第三十条 煤层气开采企业应当建立安全生产责任制，定期开展隐患排查治理，并向县级主管部门报告。"""


def _chunks(s: Settings) -> list[dict[str, Any]]:
    m = Manifest(s.manifest_path)
    rows = [dict(r) for r in m.db.execute("SELECT c.*, d.title FROM chunks c JOIN documents d USING(doc_id)")]
    m.close()
    return rows


def _search(s: Settings, q: str, method: str = "bm25", k: int = 5) -> list[Any]:
    searcher = Searcher(s)
    try:
        return searcher.search(q, top_k=k, method=method).hits
    finally:
        searcher.close()


def _inbox(tmp: Path) -> Path:
    """A folder of input files beside (not around) the test's KB_HOME."""
    (tmp / "in").mkdir()
    return tmp / "in"


def _copy(tmp: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        (tmp / n).write_bytes((FIXTURES / n).read_bytes())
        out.append(tmp / n)
    return out


def test_html_notice_keeps_title_headings_and_table_and_drops_the_site(tmp_path: Path, settings: Settings) -> None:
    assert ingest(_copy(tmp_path, "notice.html"), settings).failed == []
    rows = _chunks(settings)
    assert {r["title"] for r in rows} == {"沁水县能源局关于做好2024年煤层气井冬季安全生产工作的通知"}
    text = "\n".join(r["text"] for r in rows)
    assert "集气站可燃气体报警器；每周校验一次；集输管理站" in text  # the table, as text
    assert not any(w in text for w in ("版权所有", "当前位置", "分享到", "_hmt"))  # the site's furniture
    assert any(r["section"] == "二、严格集输站场管理" and "报警值设定为0.5%" in r["text"] for r in rows)
    assert _search(settings, "压缩机房甲烷浓度报警值")[0].section == "二、严格集输站场管理"


def test_word97_standard_has_clause_paths_and_its_code_in_the_title(tmp_path: Path, settings: Settings) -> None:
    rep = ingest(_copy(tmp_path, "standard.doc", "short_notice.doc"), settings)
    assert (rep.ingested, rep.failed) == (2, [])
    rows = _chunks(settings)
    clause = next(r for r in rows if r["section"].endswith("4.2.3"))
    assert clause["section"] == "4 排采控制 > 4.2 降压速度 > 4.2.3"
    assert clause["text"] == "单相水流阶段井底流压日降幅不应超过0.05MPa，套压出现后日降幅不应超过0.02MPa。"
    assert clause["title"] == "Q/QS 0012-2019 煤层气井排采作业规程"
    assert any("12月10日前完成井口伴热带" in r["text"] for r in rows)  # the short one, through catdoc
    assert _search(settings, "4.2.3 套压出现后日降幅")[0].section.endswith("4.2.3")


def test_excel97_two_row_header_is_merged(tmp_path: Path, settings: Settings) -> None:
    rep = ingest(_copy(tmp_path, "measurements.xls"), settings)
    assert (rep.ingested, rep.failed) == (3, [])
    texts = {r["doc_id"]: r["text"] for r in _chunks(settings)}
    assert texts["measurements-2"] == "井号 W01：QS-102；井底流压 P01：1.97；套压 P02：0.66；日产气量 Q01：2210；日产水量 Q02：1.8"


def test_slides_are_sections_titled_by_their_slide(tmp_path: Path, settings: Settings) -> None:
    deck = pptx.Presentation()
    for title, body in [("沁水盆地煤层气开发现状", "2023年地面抽采量达到32亿立方米。"),
                        ("排采技术路线", "定量化排采控制井底流压缓慢下降，防止煤粉堵塞。")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    f = tmp_path / "汇报.pptx"
    deck.save(str(f))
    assert ingest([f], settings).failed == []
    rows = sorted(_chunks(settings), key=lambda r: r["page"])
    assert [(r["page"], r["section"]) for r in rows] == [(1, "沁水盆地煤层气开发现状"), (2, "排采技术路线")]
    assert rows[0]["title"] == "沁水盆地煤层气开发现状"


def test_docx_title_style_is_the_title_and_english_headings_keep_spaces(tmp_path: Path, settings: Settings) -> None:
    d = docx.Document()
    d.add_paragraph("煤层气排采技术导则", style="Title")
    d.add_heading("一、背景", level=1)
    d.add_paragraph("沁水盆地煤层气井排采经验。")
    d.add_heading("Reservoir pressure control", level=1)
    d.add_paragraph("Keep the bottom-hole pressure falling slowly.")
    f = tmp_path / "导则.docx"
    d.save(str(f))
    assert ingest([f], settings).failed == []
    rows = _chunks(settings)
    assert {r["title"] for r in rows} == {"煤层气排采技术导则"}
    assert {r["section"] for r in rows} == {"一、背景", "Reservoir pressure control"}


def _gbk_records(n: int) -> bytes:
    lines = [f"2019-{1 + i % 12:02d}-{1 + i % 28:02d},{i % 4},{(i * 37) % 100 / 10:.1f},{1100 + i}" for i in range(n)]
    return "\n".join(lines).encode("gbk")


def test_headerless_gbk_csv_rows_are_found_by_value_and_never_crowd_out_prose(tmp_path: Path, settings: Settings) -> None:
    tmp_path = _inbox(tmp_path)
    (tmp_path / "records.csv").write_bytes(_gbk_records(300))
    (tmp_path / "guide.md").write_text("# 排采指南\n排采过程中应控制井底流压缓慢下降，日降幅不超过0.05MPa，防止煤粉产出。",
                                       encoding="utf-8")
    rep = ingest([tmp_path], settings)
    assert (rep.ingested, rep.failed) == (301, [])
    rows = {r["doc_id"]: r for r in _chunks(settings)}
    first = rows["records-1"]
    assert first["text"] == "列1：2019-01-01；列2：0；列3：0.0；列4：1100"  # the first record is data, not the header
    assert first["lookup"] == 1 and first["embed_text"] == "2019-01-01 0 0.0 1100"
    assert [h.doc_id for h in _search(settings, "1307")] == ["records-208"]  # exact lookup by a value
    for method in ("bm25", "hybrid"):
        hits = _search(settings, "排采过程中井底流压日降幅", method=method)
        assert hits[0].doc_id == "guide"
        assert method == "hybrid" or len(hits) == 1  # BM25: no row shares a word with the question


def test_caj_and_encrypted_pdf_are_named_and_the_rest_go_in(tmp_path: Path, settings: Settings) -> None:
    import pypdf

    tmp_path = _inbox(tmp_path)
    (tmp_path / "论文.caj").write_bytes(b"CAJ FILE\x00\x01\x02" * 50)
    (tmp_path / "disguised.pdf").write_bytes(b"HN\x00\x00" + b"\x01" * 200)  # a CAJ renamed .pdf
    w = pypdf.PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt("secret")
    w.write(str(tmp_path / "locked.pdf"))
    (tmp_path / "ok.txt").write_text("煤层气排采。", encoding="utf-8")
    rep = ingest([tmp_path], settings)
    failed = {Path(f.path).name: f.error for f in rep.failed}
    assert rep.ingested == 1
    assert failed["论文.caj"].startswith("论文.caj: CNKI CAJ format (中国知网 CAJ): it cannot be read here; open it in "
                                        "CAJViewer and export or print it to PDF")
    assert "CNKI CAJ format" in failed["disguised.pdf"]
    assert failed["locked.pdf"].startswith("locked.pdf: the PDF is encrypted (password required)")


def test_personal_data_is_masked_unless_switched_off(tmp_path: Path, settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "advert.txt"
    f.write_text("本文档由某文库用户上传，客服电话13912345678，邮箱 uploader@example.com。\n煤层气井排采要点。",
                 encoding="utf-8")
    assert ingest([f], settings).failed == []
    text = "\n".join(r["text"] for r in _chunks(settings))
    assert f"客服电话{PHONE}，邮箱{EMAIL}" in text and "13912345678" not in text
    monkeypatch.setenv("KB_REDACT_PII", "false")
    monkeypatch.setenv("KB_HOME", str(tmp_path / "other"))
    get_settings.cache_clear()
    assert ingest([f], get_settings()).failed == []
    assert "13912345678" in "\n".join(r["text"] for r in _chunks(get_settings()))


def test_near_duplicates_are_linked_listed_and_shown_once_in_search(tmp_path: Path, settings: Settings) -> None:
    tmp_path = _inbox(tmp_path)
    body = "\n".join(f"4.{i}.1 第{i}项排采参数应每日记录，井底流压日降幅不应超过0.0{i}MPa，异常时复核并上报调度室。"
                     for i in range(1, 9))
    (tmp_path / "GB_demo.txt").write_text("煤层气井排采规范\n" + body, encoding="utf-8")
    scanned = body.replace("上报调度室", "上报调度中心", 1).replace("\n", "\n\n")  # another extraction
    (tmp_path / "GB_demo_scan.md").write_text("# 煤层气井排采规范（扫描版）\n" + scanned, encoding="utf-8")
    (tmp_path / "other.txt").write_text("沁水盆地地面抽采量逐年增长。" * 20, encoding="utf-8")
    assert ingest([tmp_path], settings).failed == []
    m = Manifest(settings.manifest_path)
    stats = m.stats()
    m.close()
    assert [(d.doc_id, d.duplicate_of) for d in stats.duplicates] == [("GB_demo_scan", "GB_demo")]
    hits = _search(settings, "第3项排采参数井底流压日降幅", method="hybrid", k=10)
    assert sum(h.doc_id in ("GB_demo", "GB_demo_scan") and "第3项" in h.text for h in hits) == 1
    client = make_client(settings.home)
    docs = {d["doc_id"]: d for d in client.get("/documents", headers={"X-API-Key": KEY}).json()["items"]}
    assert docs["GB_demo_scan"]["duplicate_of"] == "GB_demo" and docs["other"]["duplicate_of"] is None
    assert client.get("/stats", headers={"X-API-Key": KEY}).json()["duplicates"][0]["duplicate_of"] == "GB_demo"


# ---- OCR: slow (a page takes seconds on two cores) ------------------------------------------------------------


@pytest.mark.slow  # an OCR model on a rendered page
def test_rapidocr_reads_a_rendered_chinese_page_offline() -> None:
    """In this process, under the no-network guard: the models come from the wheel, nothing downloads."""
    text = "".join(ocr_image(render_page(STANDARD.split("\n")[3], dpi=150), "rapidocr").split())
    assert "第三十条煤层气开采企业应当建立安全生产责任制" in text


@pytest.mark.slow
def test_scans_and_garbage_layers_are_ocrd_and_spaced_layers_repaired(tmp_path: Path, settings: Settings) -> None:
    tmp_path = _inbox(tmp_path)
    page = scan(render_page(STANDARD, dpi=200))
    (tmp_path / "scan.pdf").write_bytes(image_pdf([(page, None)]))
    (tmp_path / "cnki.pdf").write_bytes(image_pdf([(page, garbage_layer(STANDARD))]))
    (tmp_path / "oldocr.pdf").write_bytes(image_pdf([(page, spaced_layer(STANDARD))]))
    lines: list[str] = []
    rep = ingest([tmp_path], settings, notify=lines.append)
    assert (rep.ingested, rep.failed) == (3, [])
    assert sorted(lines) == ["cnki.pdf: OCR page 1 (1/1)", "scan.pdf: OCR page 1 (1/1)"]
    rows = _chunks(settings)
    for doc in ("scan", "cnki"):
        ocr = [r for r in rows if r["doc_id"] == doc]
        assert ocr and all(r["ocr"] == 1 and r["page"] == 1 for r in ocr)
        law = next(r for r in ocr if r["section"] == "第三十条")
        assert "建立安全生产责任制" in law["text"]
    old = "".join(r["text"] for r in rows if r["doc_id"] == "oldocr")
    assert "实测含气量为12.6m3/t" in old and "煤 层" not in old
    found = {h.doc_id for h in _search(settings, "第三十条 安全生产责任制", k=3)}
    # scan.pdf and cnki.pdf are the same page: linked as near-duplicates, their passage is shown once (kb/search/units.py)
    assert "oldocr" in found and len(found & {"scan", "cnki"}) == 1, found


@pytest.mark.slow
def test_without_ocr_a_scan_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_OCR", "false")
    get_settings.cache_clear()
    (tmp_path / "scan.pdf").write_bytes(image_pdf([(render_page(STANDARD, dpi=100), None)]))
    rep = ingest([tmp_path / "scan.pdf"], get_settings())
    assert [f.error for f in rep.failed] == ["scan.pdf: no extractable text (image-only or empty PDF; OCR is off "
                                             "(KB_OCR=false))"]


def test_stats_json_shape_includes_ocr_and_duplicates(settings: Settings) -> None:
    m = Manifest(settings.manifest_path)
    st = json.loads(m.stats().model_dump_json())
    m.close()
    assert st["ocr_chunks"] == 0 and st["duplicates"] == []
