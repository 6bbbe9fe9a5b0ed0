"""Tabular inputs (CSV, XLSX, XLS, JSONL): one Document per row — project lists and need/result records.

Every table is capped by rows and cells (KB_TABLE_MAX_ROWS, KB_TABLE_MAX_CELLS); headers are detected,
not assumed (grid.py).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path
from typing import Any

from kb.errors import ExtractionError, RecordError
from kb.ingest.readers.context import ReadContext
from kb.ingest.readers.grid import is_lookup_row, named_rows
from kb.ingest.readers.text import decode_text
from kb.ingest.readers.zipcheck import check_zip
from kb.lang.text import normalize
from kb.models import CONTACT_KEY, KINDS, VISIBILITY_WORDS, Document, Section

TABLE_EXT = (".csv", ".tsv", ".xlsx", ".xls", ".jsonl")
csv.field_size_limit(64 << 20)  # a long report in one cell is text to chunk, not a malformed file
RECORD_KINDS = ("need", "result", "expert")
# an expert/team record names its fields its own way; these fill the record's title and description
_EXPERT_ALIASES = {"title": ("name", "名称", "姓名", "团队"), "description": ("expertise", "研究方向", "专长")}
# columns of contact details: one CONTACT_KEY value, never in the indexed text (see kb/models.py)
_CONTACT_KEYS = (CONTACT_KEY, "联系方式", "phone", "email", "电话", "邮箱", "联系人")
_TITLE_KEYS = ("title", "name", "名称", "项目名称", "标题")
_KEYWORD_SPLIT = str.maketrans({"，": ",", "、": ",", "；": ",", ";": ","})


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ",".join(_cell(x) for x in v)
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d") if v.time() == datetime.time() else v.isoformat(sep=" ")
    return normalize(str(v))


class _Caps:
    """Counts rows and cells as they are read; past a limit the file fails (KB_TABLE_MAX_ROWS / _CELLS)."""

    def __init__(self, name: str, ctx: ReadContext) -> None:
        self.name, self.ctx, self.rows, self.cells = name, ctx, 0, 0

    def add(self, row: list[str]) -> list[str]:
        self.rows += 1
        self.cells += len(row)
        if self.rows > self.ctx.table_max_rows:
            raise ExtractionError(f"{self.name}: more than {self.ctx.table_max_rows} rows (KB_TABLE_MAX_ROWS); "
                                  "split the table or raise the limit")
        if self.cells > self.ctx.table_max_cells:
            raise ExtractionError(f"{self.name}: more than {self.ctx.table_max_cells} cells (KB_TABLE_MAX_CELLS); "
                                  "split the table or raise the limit")
        return row


Grid = list[list[str]]


def _csv_grid(data: bytes, name: str, caps: _Caps) -> Grid:
    text = decode_text(data, name)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return [caps.add([_cell(c) for c in row]) for row in reader]
    except csv.Error as exc:  # a malformed quote, a field over the size limit: the file, not the batch, fails
        raise ExtractionError(f"{name}: malformed CSV after line {reader.line_num} ({exc})") from None


def _xlsx_grids(data: bytes, name: str, caps: _Caps) -> list[Grid]:
    import openpyxl

    check_zip(data, name, ".xlsx", caps.ctx.zip_member_mb)  # sizes from the zip directory, before inflating
    try:  # rows are parsed lazily in read-only mode, so broken sheet XML fails inside the loop
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            if not wb.worksheets:
                raise ExtractionError(f"{name}: the workbook has no worksheet")
            return [[caps.add([_cell(c) for c in r]) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets]
        finally:
            wb.close()
    except ExtractionError:
        raise
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException/XML errors
        raise ExtractionError(f"{name}: not a readable .xlsx file ({exc.__class__.__name__})") from exc


def _xls_grids(data: bytes, name: str, caps: _Caps) -> list[Grid]:
    """Excel 97-2003 sheets through xlrd (dates by their cell type; catdoc's xls2csv garbles Chinese)."""
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:  # xlrd raises XLRDError, CompDocError, struct errors on broken files
        raise ExtractionError(f"{name}: not a readable .xls file ({exc.__class__.__name__})") from exc
    grids = []
    for sheet in book.sheets():
        grid = []
        for i in range(sheet.nrows):
            row = [xlrd.xldate_as_datetime(c.value, book.datemode) if c.ctype == xlrd.XL_CELL_DATE else c.value
                   for c in sheet.row(i)]
            grid.append(caps.add([_cell(v) for v in row]))
        grids.append(grid)
    return grids


def _jsonl_rows(data: bytes, name: str, caps: _Caps) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for n, line in enumerate(decode_text(data, name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            caps.add(list(obj))
            obj["_where"] = f"line {n}"
            rows.append(obj)
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
            errors.append(f"{name} line {n}: invalid JSON ({str(exc)[:200]})")
    return rows, errors


def read_rows(path: Path, data: bytes, ctx: ReadContext | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows as dicts keyed by column name (headers detected, see grid.py), plus per-row parse errors.

    Each row carries ``_where`` (its place in the file, for messages) and, for grids, ``_lookup``
    (a row of numbers and ids, see ``grid.is_lookup_row``).
    """
    ext, caps = path.suffix.lower(), _Caps(path.name, ctx or ReadContext())
    if ext == ".jsonl":
        return _jsonl_rows(data, path.name, caps)
    grids = [_csv_grid(data, path.name, caps)] if ext in (".csv", ".tsv") else \
        _xlsx_grids(data, path.name, caps) if ext == ".xlsx" else _xls_grids(data, path.name, caps)
    rows: list[dict[str, Any]] = []
    for k, grid in enumerate(g for g in grids if any(any(r) for r in g)):
        names, body = named_rows(grid)
        sheet = f"sheet {k + 1} " if k else ""
        for n, cells in body:
            row: dict[str, Any] = dict(zip(names, cells, strict=False))
            row.update(_where=f"{sheet}row {n}", _sheet=k, _lookup=is_lookup_row(cells))
            rows.append(row)
    return rows, []


_PRIVATE = ("_where", "_sheet", "_lookup")  # bookkeeping keys of a row, never data


def _row_label(path: Path, row: dict[str, Any]) -> str:
    """'file line N' for JSONL, 'file row N' (the file's own row number) for CSV/XLSX/XLS, plus the id if any."""
    return f"{path.name} {row['_where']}" + (f" (id {_cell(row['id'])})" if _cell(row.get("id")) else "")


def _expert_row(row: dict[str, Any]) -> dict[str, Any]:
    """An expert/team row with title and description filled from its own names (name, expertise ...)."""
    out = dict(row)
    for key, aliases in _EXPERT_ALIASES.items():
        given = next((a for a in aliases if _cell(row.get(a))), None)
        if not _cell(out.get(key)) and given:
            out[key] = out.pop(given)
    return out


def _contact(row: dict[str, Any]) -> str:
    """Every contact column of a row, as one line ("电话: ...; 邮箱: ...")."""
    parts = [(k, _cell(row.get(k))) for k in _CONTACT_KEYS if _cell(row.get(k))]
    return parts[0][1] if len(parts) == 1 and parts[0][0] == CONTACT_KEY else "; ".join(f"{k}: {v}" for k, v in parts)


def record_document(row: dict[str, Any], kind: str, source: str, label: str) -> Document:
    """A need/result/expert record; rejects rows missing id/title/description or with trl outside 1-9."""
    if kind == "expert":
        row = _expert_row(row)
    contact = _contact(row)
    row = {k: v for k, v in row.items() if k not in _CONTACT_KEYS}
    missing = [k for k in ("id", "title", "description") if not _cell(row.get(k))]
    if missing:
        raise RecordError(f"{label}: missing {', '.join(missing)}")
    meta: dict[str, Any] = {k: _cell(v) for k, v in row.items()
                            if k not in ("id", "title", "description", "kind", *_PRIVATE)}
    trl = row.get("trl")
    if trl not in (None, ""):
        try:
            meta["trl"] = int(float(str(trl)))
        except (ValueError, OverflowError):  # OverflowError: 1e400 parses as inf
            raise RecordError(f"{label}: trl {trl!r} is not a number 1-9") from None
        if not 1 <= meta["trl"] <= 9:
            raise RecordError(f"{label}: trl {meta['trl']} outside 1-9")
    else:
        meta.pop("trl", None)
    kw = row.get("keywords")
    meta["keywords"] = ",".join(
        k.strip() for k in (kw if isinstance(kw, list) else _cell(kw).translate(_KEYWORD_SPLIT).split(",")) if k and k.strip()
    )
    if contact:
        meta[CONTACT_KEY] = contact
    title, desc = _cell(row["title"]), _cell(row["description"])
    text = desc + (f"\n关键词：{meta['keywords']}" if meta["keywords"] else "")
    return Document(_cell(row["id"]), kind, title, source, [Section(text)], meta)


def project_document(row: dict[str, Any], stem: str, n: int, source: str) -> Document:
    """A table row (a project list's, or any table's): header names carried into the text and the metadata.

    A row of numbers and ids (``_lookup``) is titled by its place in the table and flagged, so it is found
    by an exact value but does not compete with prose for free-text questions (kb/ingest/chunk.py).
    """
    cells = {k: _cell(v) for k, v in row.items() if k and k not in _PRIVATE and _cell(v)}
    sheet = int(row.get("_sheet") or 0)
    doc_id = cells.get("id") or (f"{stem}-{n}" if not sheet else f"{stem}-s{sheet + 1}-{n}")
    lookup = bool(row.get("_lookup"))
    title = None if lookup else next((cells[k] for k in _TITLE_KEYS if cells.get(k)), None)
    if lookup:
        title = f"{stem} {row['_where']}"
    title = title or next((v for k, v in cells.items() if k != "id"), doc_id)
    text = "；".join(f"{k}：{v}" for k, v in cells.items() if k not in ("id", "kind", "visibility"))
    return Document(doc_id, "project", title, source, [Section(text, lookup=lookup)], cells)


def set_visibility(doc: Document, label: str) -> Document:
    """The row's ``visibility`` column (public/internal, 公开/内部; empty: public) as the document's; an unknown
    value refuses the row. Public is left unset, so public records keep the fingerprints they had."""
    raw = str(doc.meta.pop("visibility", "") or "").strip()
    value = VISIBILITY_WORDS.get(raw.lower()) if raw else "public"
    if value is None:
        raise RecordError(f"{label}: visibility {raw!r} is not public or internal (公开 / 内部)")
    if value == "internal":
        doc.meta["visibility"] = value
    return doc


def table_documents(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
    """Documents from a table file, plus a message for every rejected row (the rest go in).

    The kind is ``--kind`` if given, else the row's ``kind`` column, else the folder's, else project.
    """
    rows, errors = read_rows(path, data, ctx)
    docs: list[Document] = []
    counters: dict[int, int] = {}
    for row in rows:
        label = _row_label(path, row)
        sheet = int(row.get("_sheet") or 0)
        counters[sheet] = n = counters.get(sheet, 0) + 1
        row_kind = ctx.kind or _cell(row.get("kind")) or ctx.folder_kind or "project"
        try:
            if row_kind in RECORD_KINDS:
                docs.append(set_visibility(record_document(row, row_kind, path.name, label), label))
            elif row_kind == "project":
                docs.append(set_visibility(project_document(row, path.stem, n, path.name), label))
            else:
                raise RecordError(f"{label}: unknown kind {row_kind!r} (valid: {', '.join(KINDS)})")
        except RecordError as exc:
            errors.append(exc.message)
    seen: set[str] = set()
    unique = []
    for d in docs:
        if d.doc_id in seen:
            errors.append(f"{path.name}: duplicate id {d.doc_id!r}; later row ignored")
            continue
        seen.add(d.doc_id)
        unique.append(d)
    return unique, errors
