"""PDF: page texts from pypdf, OCR where the text layer is missing or garbage; numbered headings become sections.

Runs inside the parser's child process (kb/ingest/sandbox.py), like every reader.
"""

from __future__ import annotations

import io
import re

from kb.errors import ExtractionError
from kb.ingest.ocr import PageImages, ocr_image
from kb.ingest.plan import clause_split, heading_level, is_clause_document
from kb.ingest.readers.context import ReadContext
from kb.ingest.readers.text import require_text
from kb.lang.repair import drop_debris, drop_running_lines, garbage_share, line_join, needs_ocr
from kb.lang.text import normalize
from kb.models import Section

_PDF_HEADING = re.compile(r"^([1-9]\d?(\.\d{1,2}){0,2})\s*([^\d\s.].{0,60})$")
_PAGE_FURNITURE = re.compile(r"^(第\s*\d+\s*页(\s*/\s*共\s*\d+\s*页)?|page\s+\d+(\s+of\s+\d+)?|[-–—\s]*\d+[-–—\s]*)$",
                             re.IGNORECASE)
_ABSTRACT = re.compile(r"^(摘\s*要|abstract)\b", re.IGNORECASE)
_REFERENCES = re.compile(r"^(参\s*考\s*文\s*献|references|bibliography)$", re.IGNORECASE)


def _pdf_heading(line: str) -> str | None:
    m = _PDF_HEADING.match(line)
    head = m.group(3) if m else ""
    # a wrapped clause, not a heading: long in CJK, or holding a comma
    cjk_long = len(re.findall(r"[\u4e00-\u9fff]", head)) > 24 or "，" in head
    if m and line[-1:] not in "。；，,.;" and not re.match(r"^\d+\s*[%年月日万亿]", line) and not head[0].islower() \
            and not cjk_long:
        return f"{m.group(1)} {m.group(3).strip()}"
    return line if _ABSTRACT.match(line) and len(line) < 20 else None


def line_heading(line: str, clauses: bool) -> tuple[int, str, str] | None:
    """(level, heading, rest of the line) when a PDF line starts a section: a numbered heading (2.1 方法),
    摘要, a law's 第X条 or (in a standard) a clause with its text; levels as kb/ingest/plan.py's."""
    head = _pdf_heading(line)
    if head is not None:
        num = head.split(" ")[0]
        return (10 * (num.count(".") + 1) + 1 if num[0].isdigit() else 11), head, ""
    return clause_split(line, clauses)


def pdf_sections(pages: list[list[str]], title: str, ocr: list[bool] | None = None) -> list[Section]:
    """Sections of a PDF's page lines: numbered headings (1, 2.1, 摘要), articles and clauses start sections.

    The reference list ends the text: its titles match almost any query and answer none.
    """
    path: list[tuple[int, str]] = []
    out: list[Section] = []
    pages = [drop_debris([normalize(x) for x in p]) for p in pages]
    clauses = is_clause_document([x for p in pages for x in p])

    def flush(body: list[str], page_no: int) -> None:
        if body:
            ocred = bool(ocr and ocr[page_no - 1])
            out.append(Section(normalize("\n".join(body)), tuple(h for _, h in path), page_no, ocred))
            body.clear()

    for page_no, page_lines in enumerate(pages, start=1):
        body: list[str] = []
        for line in page_lines:
            if not line or line == title or _PAGE_FURNITURE.match(line):
                continue  # page numbers, "第 n 页 / 共 N 页" footers and running titles
            if _REFERENCES.match(line):
                flush(body, page_no)
                return out
            split = line_heading(line, clauses)
            if split is None:
                _append_line(body, line)
                continue
            flush(body, page_no)
            path[:] = [p for p in path if p[0] < split[0]] + [(split[0], split[1])]
            if split[2]:
                body.append(split[2])
        flush(body, page_no)
    return out


def _append_line(body: list[str], line: str) -> None:
    """Rejoin PDF lines: a line not ending a sentence continues the previous one."""
    if body and body[-1][-1:] not in "。！？；:：.!?;" and heading_level(line) is None \
            and clause_split(line, True) is None:
        body[-1] = line_join(body[-1], line)
    else:
        body.append(line)


def _clean(text: str) -> str:
    """Lone surrogates (from broken ToUnicode maps) replaced: they cannot be stored as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def pdf_text_pages(data: bytes, name: str) -> tuple[list[str], str]:
    """(page texts, metadata title) of the PDF's text layer (pypdf)."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(f"{name}: the PDF is encrypted (password required); open it with its password and "
                                  "print or save it to a PDF without one, then ingest that")
        pages = [_clean(page.extract_text() or "") for page in reader.pages]
        title = _clean(str((reader.metadata.title if reader.metadata else None) or ""))
    except ExtractionError:
        raise
    except Exception as exc:  # pypdf raises many types on broken files; the sandbox contains the rest
        raise ExtractionError(f"{name}: unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return pages, title


def _ocr_pages(data: bytes, pages: list[str], ctx: ReadContext) -> list[bool]:
    """Pages whose text layer is missing or garbage replaced, in place, by OCR; which pages were OCR'd."""
    images = PageImages(data)
    try:
        todo = [i for i in range(len(pages)) if needs_ocr(pages[i], images.ink(i), *images.size_pt(i))]
        done = [False] * len(pages)
        for n, i in enumerate(todo, start=1):
            ctx.report({"stage": "ocr", "page": i + 1, "n": n, "of": len(todo)}, ctx.ocr_page_timeout_s)
            pages[i] = ocr_image(images.image(i, ctx.ocr_dpi), ctx.ocr_engine, ctx.ocr_page_timeout_s)
            done[i] = True
        ctx.report({"stage": "parsing"})
        return done
    finally:
        images.close()


def read_pdf(data: bytes, name: str, ctx: ReadContext) -> tuple[str, list[Section]]:
    """(title, sections) of a PDF, page numbers kept; pages without a usable text layer are OCR'd (KB_OCR)."""
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError(f"{name}: not a PDF file (no %PDF header)")
    pages, meta_title = pdf_text_pages(data, name)
    if ctx.ocr:
        ocr = _ocr_pages(data, pages, ctx)
    else:
        ocr = [False] * len(pages)
        pages = ["" if garbage_share(p) > 0.15 else p for p in pages]
    if not any(p.strip() for p in pages):
        why = "" if ctx.ocr else "; OCR is off (KB_OCR=false)"
        raise ExtractionError(f"{name}: no extractable text (image-only or empty PDF{why})")
    lines = drop_running_lines([[normalize(x) for x in p.split("\n")] for p in pages])
    first = next((x for p in lines for x in p if x), "")
    title = normalize(meta_title) or first[:80]
    return title, require_text(pdf_sections(lines, title, ocr), name)
