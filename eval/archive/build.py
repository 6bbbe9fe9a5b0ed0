"""Writes the archive set's folder: every kind of file the county's archives hold, made from texts.py.

    python -m eval.archive.build DIR
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import openpyxl

from bench.pages import garbage_layer, image_pdf, render_page, scan, spaced_layer
from eval.archive import texts

ROOT = Path(__file__).resolve().parents[2]


def _pages(chunks: list[str], layer: str | None, seed: int = 0, dpi: int = 200, columns: int = 1) -> bytes:
    """A PDF, one page per text: scanned images with no, a clean, a spaced (old OCR) or a garbage layer."""
    pages = []
    for i, text in enumerate(chunks):
        img = scan(render_page(text, dpi=dpi, columns=columns), seed=seed + i)
        lines = {"clean": text.split("\n"), "spaced": spaced_layer(text), "garbage": garbage_layer(text)}.get(layer or "")
        pages.append((img, lines))
    return image_pdf(pages)


def _records(n: int) -> bytes:
    """Headerless GBK CSV of numeric accident-style records: code, date, deaths, injuries, loss, area code."""
    rnd = random.Random(7)
    rows = [f"SX{2015 + i % 9}-{i:04d},{2015 + i % 9}-{1 + i % 12:02d}-{1 + i % 28:02d},{rnd.randint(0, 3)},"
            f"{rnd.randint(0, 9)},{rnd.randint(1, 900) / 10:.1f},1405{rnd.randint(21, 26)}" for i in range(n)]
    return "\r\n".join(rows).encode("gbk")


def _xlsx(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["W01", "A01", "A02", "A03", "R01", "R01"])  # codes over names; 备注 twice
    ws.append(["井号", "区块", "井型", "投产时间", "备注", "备注"])
    for code, block, kind, start, note in texts.XLSX_ROWS:
        ws.append([code, block, kind, start, note, "见排采日报"])
    wb.save(str(path))


def build(out: Path) -> Path:
    files: dict[str, bytes | str] = {
        "standards/Q_QS_0031-2021.txt": texts.STANDARD,
        "laws/煤层气开发利用管理办法.md": texts.LAW,
        "notices/标准化达标评审通知.html": texts.NOTICE,
        "notices/冬季安全生产通知.htm": (ROOT / "tests" / "fixtures" / "notice.html").read_bytes(),
        "scans/井场防火防爆规定.pdf": _pages([texts.SCANNED_REGULATION], None, seed=1),
        "scans/高阶煤储层伤害机理.pdf": _pages([texts.SCANNED_PAPER], None, seed=2, dpi=150),
        "ocr_layers/郑庄区块评价报告.pdf": _pages([texts.SPACED_REPORT], "spaced", seed=3),
        "cnki/排采智能控制系统设计.pdf": _pages([texts.CNKI_PAPER], "garbage", seed=4),
        "thesis/樊庄低产井增产研究.pdf": _pages([f"太原理工大学硕士学位论文\n{p}\n第 {i} 页"
                                              for i, p in enumerate(texts.THESIS_PAGES, 1)], "clean", seed=5),
        "web_downloads/集输管网设计要点.pdf": _pages(texts.ADVERT.split("\n\n"), "clean", seed=6),
        "english/fines_migration.pdf": _pages([texts.EN_PAPER], "clean", seed=7, columns=2),
        "standards/Q_QS_0031-2021_scan.pdf": _pages([texts.STANDARD[:700], texts.STANDARD[700:]], "clean", seed=8),
        "tables/事故记录.csv": _records(8000),
        "legacy/排采作业规程.doc": (ROOT / "tests" / "fixtures" / "standard.doc").read_bytes(),
        "legacy/排采数据.xls": (ROOT / "tests" / "fixtures" / "measurements.xls").read_bytes(),
    }
    for rel, content in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    _xlsx(out / "tables" / "排采井档案.xlsx")
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
