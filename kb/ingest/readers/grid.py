"""A table's grid of cells to named rows: header detection, two-row headers merged, names made unique.

Pure functions over lists of cell strings (the readers in tables.py turn CSV/XLSX/XLS into grids).
Our own because no table library guesses whether a Chinese table has a header: pandas and csv take
the first row on trust, which makes the first record of a headerless export every row's column names.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"^[-+]?(?:\d[\d,]*)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?$")
_DATE = re.compile(r"^\d{2,4}[-/.年]\d{1,2}(?:[-/.月]\d{1,2}日?)?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_WORD = re.compile(r"[\u3400-\u9fff]|[A-Za-z]{2,}")
_LETTER = re.compile(r"[\u3400-\u9fffA-Za-z]")
GENERATED = "列"  # generated column names: 列1, 列2, ...


def is_value(cell: str) -> bool:
    """A number, percentage or date: what a data row holds and a header row does not."""
    s = cell.strip().replace(" ", "")
    return bool(s) and bool(_NUMBER.match(s) or _DATE.match(s)) and any(c.isdigit() for c in s)


def _value_columns(rows: list[list[str]], width: int) -> set[int]:
    """Columns where most non-empty cells of ``rows`` are values."""
    out = set()
    for j in range(width):
        cells = [r[j] for r in rows if j < len(r) and r[j].strip()]
        if cells and sum(is_value(c) for c in cells) >= 0.6 * len(cells):
            out.add(j)
    return out


def _header_like(row: list[str], value_cols: set[int], width: int) -> bool:
    """A row of labels: no values where the data has values, mostly filled, short cells."""
    filled = [c for c in row if c.strip()]
    if len(filled) < max(1, width // 2) and not (width <= 2 and filled):
        return False
    if any(is_value(row[j]) for j in value_cols if j < len(row)):
        return False
    if any(is_value(c) for c in filled) or any(len(c) > 40 for c in filled):
        return False
    return True


def header_rows(grid: list[list[str]]) -> int:
    """How many of the first rows are headers: 0 (none: names are generated), 1 or 2.

    A first row holding a value (number, date) in a column of values is data, never a header.
    An all-text table keeps its first row as the header (record files name their fields).
    """
    if not grid:
        return 0
    width = max(len(r) for r in grid)
    body = grid[2:] if len(grid) > 3 else grid[1:]
    values = _value_columns(body, width)
    if not _header_like(grid[0], values, width):
        return 0
    if len(grid) > 3 and values and _header_like(grid[1], values, width) and \
            any(grid[1][j].strip() for j in values if j < len(grid[1])):
        return 2
    return 1


def merge_header(top: list[str], bottom: list[str]) -> list[str]:
    """Two header rows as one: a top cell spanning empty cells to its right (a merged group) carries over.

    ``["A01", "A02"]`` over ``["井号", "日产气量"]`` gives ``["井号 A01", "日产气量 A02"]``;
    ``["产量", ""]`` over ``["气", "水"]`` gives ``["产量 气", "产量 水"]``.
    """
    out, carry = [], ""
    for j in range(max(len(top), len(bottom))):
        t = top[j].strip() if j < len(top) else ""
        b = bottom[j].strip() if j < len(bottom) else ""
        carry = t or carry
        if not b:
            out.append(carry)
        elif not carry or carry == b:
            out.append(b)
        elif _LETTER.search(carry) and not re.search(r"[\u3400-\u9fff]", carry):
            out.append(f"{b} {carry}")  # codes over names: the name first
        else:
            out.append(f"{carry} {b}")
    return out


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique and non-empty: a repeat gets _2, _3; an empty name becomes 列N."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for j, name in enumerate(names, start=1):
        name = name.strip() or f"{GENERATED}{j}"
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name}_{n}")
    return out


def named_rows(grid: list[list[str]]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(column names, [(row number in the file, cells)]) of a grid: headers detected, empty rows dropped."""
    grid = [[c.strip() for c in r] for r in grid]
    width = max((len(r) for r in grid), default=0)
    n_head = header_rows(grid)
    if n_head == 2:
        names = merge_header(grid[0], grid[1])
    elif n_head == 1:
        names = grid[0]
    else:
        names = []
    names = unique_names(names + [""] * (width - len(names)))
    rows = [(i + 1, r) for i, r in enumerate(grid) if i >= n_head and any(r)]
    return names, rows


def is_lookup_row(values: list[str]) -> bool:
    """A row of ids, dates and measurements: almost no words (fewer than 4 CJK characters or Latin words,
    and letters under a fifth of its characters)."""
    text = "".join("".join(v.split()) for v in values)
    if not text:
        return True
    letters = len(_LETTER.findall(text))
    return len(_WORD.findall(text)) < 4 and letters < 0.2 * len(text)
