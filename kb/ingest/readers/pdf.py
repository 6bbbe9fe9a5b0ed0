"""PDF: page texts from pypdf in a killable child process; numbered headings become sections."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from kb.errors import ExtractionError
from kb.ingest.plan import heading_level
from kb.ingest.readers.text import require_text
from kb.lang.text import normalize
from kb.models import Section

_PDF_HEADING = re.compile(r"^([1-9]\d?(\.\d{1,2}){0,2})\s*([^\d\s.].{0,60})$")
_PAGE_FURNITURE = re.compile(r"^(第\s*\d+\s*页(\s*/\s*共\s*\d+\s*页)?|page\s+\d+(\s+of\s+\d+)?|[-–—\s]*\d+[-–—\s]*)$",
                             re.IGNORECASE)
_ABSTRACT = re.compile(r"^(摘\s*要|abstract)\b", re.IGNORECASE)
_REFERENCES = re.compile(r"^(参\s*考\s*文\s*献|references|bibliography)$", re.IGNORECASE)
_ROOT = Path(__file__).resolve().parents[3]  # where the child finds this very kb package


def _pdf_heading(line: str) -> str | None:
    m = _PDF_HEADING.match(line)
    head = m.group(3) if m else ""
    if m and line[-1:] not in "。；，,.;" and not re.match(r"^\d+\s*[%年月日万亿]", line) and not head[0].islower():
        return f"{m.group(1)} {m.group(3).strip()}"
    return line if _ABSTRACT.match(line) and len(line) < 20 else None


def pdf_sections(pages: list[str], title: str) -> list[Section]:
    """Sections of a PDF's page texts: numbered headings (1, 2.1, 摘要) start sections.

    The reference list ends the text: its titles match almost any query and answer none.
    """
    path: list[tuple[int, str]] = []
    out: list[Section] = []

    def flush(body: list[str], page_no: int) -> None:
        if body:
            out.append(Section(normalize("\n".join(body)), tuple(h for _, h in path), page_no))
            body.clear()

    for page_no, raw in enumerate(pages, start=1):
        body: list[str] = []
        for line in (normalize(x) for x in raw.split("\n")):
            if not line or line == title or _PAGE_FURNITURE.match(line):
                continue  # page numbers, "第 n 页 / 共 N 页" footers and running titles
            if _REFERENCES.match(line):
                flush(body, page_no)
                return out
            head = _pdf_heading(line)
            if head is None:
                _append_line(body, line)
                continue
            flush(body, page_no)
            level = head.split(" ")[0].count(".") + 1 if head[0].isdigit() else 1
            path[:] = [p for p in path if p[0] < level] + [(level, head)]
        flush(body, page_no)
    return out


def _append_line(body: list[str], line: str) -> None:
    """Rejoin PDF lines: a line not ending a sentence continues the previous one."""
    if body and body[-1][-1:] not in "。！？；:：.!?;" and heading_level(line) is None:
        sep = " " if body[-1][-1:].isascii() and line[:1].isascii() else ""
        body[-1] = body[-1] + sep + line
    else:
        body.append(line)


def pdf_pages(data: bytes, name: str, timeout_s: float) -> tuple[list[str], str]:
    """(page texts, metadata title) from pypdf in a child process, killed after ``timeout_s``.

    A process, not a thread: a PDF that keeps the parser busy can only be stopped by killing it.
    """
    cmd = [sys.executable, "-m", "kb.ingest.pdfworker"]
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout_s, cwd=_ROOT, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child and reaped it
        raise ExtractionError(f"{name}: PDF parsing took longer than {timeout_s:g} s and was stopped "
                              "(KB_PDF_TIMEOUT_S); the file may be malformed") from None
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise ExtractionError(f"{name}: the PDF parser crashed (exit code {proc.returncode})") from None
    if "error" in out:
        raise ExtractionError(f"{name}: {out['error']}")
    return list(out["pages"]), str(out["title"])


def read_pdf(data: bytes, name: str, timeout_s: float) -> tuple[str, list[Section]]:
    """(title, sections) of a PDF, page numbers kept; the parser is killed after ``timeout_s`` (KB_PDF_TIMEOUT_S)."""
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError(f"{name}: not a PDF file (no %PDF header)")
    pages, meta_title = pdf_pages(data, name, timeout_s)
    if not any(p.strip() for p in pages):
        raise ExtractionError(f"{name}: no extractable text (image-only or empty PDF)")
    first = next((normalize(x) for p in pages for x in p.split("\n") if x.strip()), "")
    title = normalize(meta_title) or first[:80]
    return title, require_text(pdf_sections(pages, title), name)


