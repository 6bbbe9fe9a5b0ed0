"""Working sheets for the bureau (.xlsx through openpyxl, or .csv): header frozen, autofilter, column widths,
wrapped cells so one reason per line reads as a list."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from kb.errors import BadInputError

SHEET_FORMATS = (".xlsx", ".csv")


def write_sheet(path: Path, title: str, headers: Sequence[str], rows: list[list[object]],
                widths: Sequence[int] = ()) -> None:
    """Rows under ``headers`` as .xlsx or .csv (UTF-8 with BOM, so Excel reads Chinese)."""
    if path.suffix.lower() not in SHEET_FORMATS:
        raise BadInputError(f"output must end in {' or '.join(SHEET_FORMATS)}, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(headers)
            w.writerows(rows)
        return
    import openpyxl
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    ws.append(list(headers))
    for r in rows:
        ws.append(r)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = wrap
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    wb.save(path)
