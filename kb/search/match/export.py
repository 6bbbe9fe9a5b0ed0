"""The batch sheet: every need with its matches, as .xlsx (openpyxl) or .csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from kb.errors import BadInputError
from kb.models import Match
from kb.search.match.records import Record

EXPORT_HEADERS = ("需求编号", "需求名称", "排名", "成果编号", "成果名称", "匹配度", "匹配把握",
                  "语义相似", "标题相似", "描述相似", "术语重合", "领域加分", "匹配理由")
STRONG, WEAK = "较大", "暂无把握较大的匹配"  # the need's best match is strong / is not (then every row says so)
EXPORT_FORMATS = (".xlsx", ".csv")


def export_rows(pairs: list[tuple[Record, list[Match]]]) -> list[list[Any]]:
    """One row per need x match, reasons joined into one readable cell."""
    rows: list[list[Any]] = []
    for need, matches in pairs:
        sure = bool(matches) and matches[0].strong
        for rank, m in enumerate(matches, start=1):
            p = m.parts
            rows.append([need.doc_id, need.title, rank, m.doc_id, m.title, m.score,
                         STRONG if sure and m.strong else WEAK if not sure else "较小", p["semantic"], p["title"],
                         p["description"], p["terms"], p["adjust"], "；".join(r.text for r in m.reasons)])
    return rows


def write_table(path: Path, rows: list[list[Any]]) -> None:
    """Rows under EXPORT_HEADERS as .xlsx (openpyxl) or .csv (UTF-8 with BOM, so Excel reads Chinese)."""
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise BadInputError(f"output must end in {' or '.join(EXPORT_FORMATS)}, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(EXPORT_HEADERS)
            w.writerows(rows)
        return
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "需求成果匹配"
    ws.append(list(EXPORT_HEADERS))
    for r in rows:
        ws.append(r)
    ws.freeze_panes = "A2"
    wb.save(path)
