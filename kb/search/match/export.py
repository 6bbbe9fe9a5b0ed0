"""The batch sheet: every need with its matches, as a working list (.xlsx through openpyxl, or .csv)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kb.models import Match
from kb.search.match.records import Record
from kb.search.match.sheet import SHEET_FORMATS, write_sheet
from kb.search.match.threshold import rating

# the first twelve columns are the sheet's original ones, in their order (scripts read them); the rest were added
EXPORT_HEADERS = ("需求编号", "需求名称", "排名", "成果编号", "成果名称", "综合得分",
                  "语义相似", "标题相似", "描述相似", "术语重合", "领域加分", "匹配理由",
                  "评级", "需求单位", "成果单位", "TRL", "领域", "地区", "来源", "对接状态", "备注", "匹配把握")
EXPORT_WIDTHS = (10, 30, 6, 10, 34, 9, 9, 9, 9, 9, 9, 60, 6, 24, 28, 6, 12, 18, 30, 10, 24, 18)
EXPORT_FORMATS = SHEET_FORMATS
Statuses = dict[tuple[str, str], tuple[str, str]]  # (need id, candidate id) -> (status, note)
STRONG, WEAK = "较大", "暂无把握较大的匹配"  # the need's best match is strong / is not (then every row says so)


def export_rows(pairs: list[tuple[Record, list[Match]]], statuses: Statuses | None = None) -> list[list[Any]]:
    """One row per need x match, one reason per line of its cell, with the pair's status and note if any."""
    rows: list[list[Any]] = []
    for need, matches in pairs:
        sure = bool(matches) and matches[0].strong
        for rank, m in enumerate(matches, start=1):
            p = m.parts
            status, note = (statuses or {}).get((need.doc_id, m.doc_id), ("", ""))
            rows.append([need.doc_id, need.title, rank, m.doc_id, m.title, m.score, p["semantic"], p["title"],
                         p["description"], p["terms"], p["adjust"],
                         "\n".join(r.text for r in m.reasons if r.type != "score"),
                         m.rating or rating(m.score), need.get("org"), m.org or "", m.trl or "", m.field or "",
                         m.region or "", m.source or "", status, note,
                         STRONG if sure and m.strong else WEAK if not sure else "较小"])
    return rows


def write_table(path: Path, rows: list[list[Any]]) -> None:
    """Rows under EXPORT_HEADERS as the bureau's working list (.xlsx or .csv)."""
    write_sheet(path, "需求成果匹配", EXPORT_HEADERS, rows, EXPORT_WIDTHS)
