"""Real files in every supported format: Word headings, XLSX rows, PDF pages and headings."""

from __future__ import annotations

from pathlib import Path

import docx
import openpyxl

from kb.index.manifest import Manifest
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import ROOT


def _chunks(s: Settings) -> list[dict]:  # type: ignore[type-arg]
    m = Manifest(s.manifest_path)
    rows = [dict(r) for r in m.iter_chunks()]
    m.close()
    return rows


def test_docx_heading_styles_become_heading_paths(tmp_path: Path, settings: Settings) -> None:
    d = docx.Document()
    d.add_heading("第一章 煤层气产业", level=1)
    d.add_heading("一、 排采技术", level=2)
    d.add_paragraph("推广定量化排采，控制井底流压 缓慢 下降。")
    f = tmp_path / "规划.docx"
    d.save(str(f))
    assert ingest([f], settings).failed == []
    [row] = _chunks(settings)
    assert row["section"] == "第一章煤层气产业 > 一、排采技术"
    assert row["text"] == "推广定量化排采，控制井底流压缓慢下降。"


def test_xlsx_rows_are_records(tmp_path: Path, settings: Settings) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "category", "name"])
    ws.append(["CBM-01", "科技研发项目", "沁水盆地高煤阶煤层气高效开发示范工程"])
    ws.append([None, None, None])
    ws.append(["CBM-02", "瓦斯发电项目", "端氏力宇瓦斯发电项目"])
    f = tmp_path / "projects.xlsx"
    wb.save(str(f))
    rep = ingest([f], settings)
    assert (rep.ingested, rep.failed) == (2, [])
    texts = {r["doc_id"]: r["text"] for r in _chunks(settings)}
    assert texts["CBM-02"] == "category：瓦斯发电项目；name：端氏力宇瓦斯发电项目"


def test_pdf_keeps_pages_headings_and_cjk_text(settings: Settings) -> None:
    pdf = ROOT / "corpus" / "papers" / "hz_wells_zh.pdf"
    assert ingest([pdf], settings).failed == []
    rows = _chunks(settings)
    assert {r["doc_id"] for r in rows} == {"hz_wells_zh"}
    pages = {r["page"] for r in rows}
    assert min(pages) == 1 and max(pages) >= 5
    u_well = [r for r in rows if "3.2 U型井" in r["section"]]
    assert u_well and u_well[0]["section"].startswith("3 主要井型及其演进 > 3.2 U型井")
    assert all("页 / 共" not in r["text"] for r in rows)  # running footers are dropped
    assert any("沁水盆地" in r["text"] for r in rows)


def test_pdf_reference_list_is_not_indexed(settings: Settings) -> None:
    pdf = ROOT / "corpus" / "papers" / "lng_storage_en.pdf"
    assert ingest([pdf], settings).failed == []
    rows = _chunks(settings)
    assert rows and not any("References" in r["section"] for r in rows)
    assert any(r["section"].startswith("4 Storage > 4.2 Boil-off gas") for r in rows)
