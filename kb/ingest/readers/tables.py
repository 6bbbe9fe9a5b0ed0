"""Tabular inputs (CSV, XLSX, JSONL): one Document per row — project lists and need/result records."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from kb.errors import ExtractionError, RecordError
from kb.ingest.readers.text import decode_text
from kb.ingest.readers.zipcheck import check_zip
from kb.lang.text import normalize
from kb.models import KINDS, Document, Section

TABLE_EXT = (".csv", ".xlsx", ".jsonl")
RECORD_KINDS = ("need", "result")
_TITLE_KEYS = ("title", "name", "名称", "项目名称", "标题")
_KEYWORD_SPLIT = str.maketrans({"，": ",", "、": ",", "；": ",", ";": ","})


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ",".join(_cell(x) for x in v)
    return normalize(str(v))


def read_rows(path: Path, data: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows as dicts keyed by header, plus per-row parse errors (for JSONL lines)."""
    ext = path.suffix.lower()
    if ext == ".csv":
        return _csv_rows(decode_text(data, path.name), path.name), []
    if ext == ".xlsx":
        return _xlsx_rows(data, path.name), []
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for n, line in enumerate(decode_text(data, path.name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            obj["_row"] = n
            rows.append(obj)
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
            errors.append(f"{path.name} line {n}: invalid JSON ({str(exc)[:200]})")
    return rows, errors


def _csv_rows(text: str, name: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return list(reader)
    except csv.Error as exc:  # e.g. a field over csv's 128 KiB limit: the file, not the batch, fails
        raise ExtractionError(f"{name}: malformed CSV after line {reader.line_num} ({exc})") from None


def _xlsx_rows(data: bytes, name: str) -> list[dict[str, Any]]:
    import openpyxl

    check_zip(data, name, ".xlsx")  # sizes from the zip directory, before openpyxl inflates anything
    try:  # rows are parsed lazily in read-only mode, so broken sheet XML fails inside the loop
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            if not wb.worksheets:
                raise ExtractionError(f"{name}: the workbook has no worksheet")
            it = wb.worksheets[0].iter_rows(values_only=True)
            header = [_cell(h) for h in next(it, ())]
            return [dict(zip(header, r, strict=False)) for r in it if any(c is not None for c in r)]
        finally:
            wb.close()
    except ExtractionError:
        raise
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException/XML errors
        raise ExtractionError(f"{name}: not a readable .xlsx file ({exc.__class__.__name__})") from exc


def _row_label(path: Path, row: dict[str, Any], n: int) -> str:
    """'file line N' for JSONL, 'file row N' (header = row 1) for CSV/XLSX, plus the id if any."""
    where = f"line {row['_row']}" if "_row" in row else f"row {n}"
    return f"{path.name} {where}" + (f" (id {_cell(row['id'])})" if _cell(row.get("id")) else "")


def record_document(row: dict[str, Any], kind: str, source: str, label: str) -> Document:
    """A need/result record; rejects rows missing id/title/description or with trl outside 1-9."""
    missing = [k for k in ("id", "title", "description") if not _cell(row.get(k))]
    if missing:
        raise RecordError(f"{label}: missing {', '.join(missing)}")
    meta: dict[str, Any] = {k: _cell(v) for k, v in row.items() if k not in ("id", "title", "description", "kind", "_row")}
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
    title, desc = _cell(row["title"]), _cell(row["description"])
    text = desc + (f"\n关键词：{meta['keywords']}" if meta["keywords"] else "")
    return Document(_cell(row["id"]), kind, title, source, [Section(text)], meta)


def project_document(row: dict[str, Any], stem: str, n: int, source: str) -> Document:
    """A project-list row: header names carried into the text and the metadata."""
    cells = {k: _cell(v) for k, v in row.items() if k and k != "_row" and _cell(v)}
    doc_id = cells.get("id") or f"{stem}-{n}"
    title = next((cells[k] for k in _TITLE_KEYS if cells.get(k)), None)
    title = title or next((v for k, v in cells.items() if k != "id"), doc_id)
    text = "；".join(f"{k}：{v}" for k, v in cells.items() if k not in ("id", "kind"))
    return Document(doc_id, "project", title, source, [Section(text)], cells)


def table_documents(
    path: Path, data: bytes, kind: str | None, default_kind: str | None = None
) -> tuple[list[Document], list[str]]:
    """Documents from a table file, plus a message for every rejected row (the rest go in).

    The kind is ``kind`` if given, else the row's ``kind`` column, else ``default_kind``, else project.
    """
    rows, errors = read_rows(path, data)
    docs: list[Document] = []
    for n, row in enumerate(rows, start=1):
        label = _row_label(path, row, n + 1)
        row_kind = kind or _cell(row.get("kind")) or default_kind or "project"
        try:
            if row_kind in RECORD_KINDS:
                docs.append(record_document(row, row_kind, path.name, label))
            elif row_kind == "project":
                docs.append(project_document(row, path.stem, n, path.name))
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
