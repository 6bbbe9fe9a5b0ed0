"""File readers: bytes on disk to Documents (text, Markdown, Word, PDF); tables live in tables.py."""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, heading_level, parse_structure
from kb.models import Document, Section
from kb.text import normalize

TEXT_EXT = {".txt", ".md", ".markdown"}
_PDF_HEADING = re.compile(r"^([1-9]\d?(\.\d{1,2}){0,2})\s*([^\d\s.].{0,60})$")
_PAGE_FURNITURE = re.compile(r"^(第\s*\d+\s*页(\s*/\s*共\s*\d+\s*页)?|page\s+\d+(\s+of\s+\d+)?|[-–—\s]*\d+[-–—\s]*)$",
                             re.IGNORECASE)
_ABSTRACT = re.compile(r"^(摘\s*要|abstract)\b", re.IGNORECASE)
_REFERENCES = re.compile(r"^(参\s*考\s*文\s*献|references|bibliography)$", re.IGNORECASE)


def decode_text(data: bytes, name: str) -> str:
    """Decode text trying UTF-8 (with or without BOM), UTF-16 (by BOM), then GB18030."""
    encodings = ("utf-8-sig", "gb18030")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16", *encodings)
    for enc in encodings:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ExtractionError(f"{name}: cannot decode text (tried UTF-8, UTF-8-BOM, UTF-16, GB18030)")


def _require_text(sections: list[Section], name: str) -> list[Section]:
    if not any(s.text.strip() for s in sections):
        raise ExtractionError(f"{name}: no extractable text")
    return sections


def read_text(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a plain-text or Markdown document."""
    text = decode_text(data, name)
    return guess_title(text), _require_text(parse_structure(text), name)


def read_docx(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a Word document; Word heading styles become Markdown headings."""
    import docx

    try:
        d = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zipfile/KeyError/ValueError for broken files
        raise ExtractionError(f"{name}: not a readable .docx file ({exc.__class__.__name__})") from exc
    lines = []
    for p in d.paragraphs:
        style = (p.style.name if p.style is not None else "") or ""
        level = style.rsplit(" ", 1)[-1] if style.startswith("Heading") else ""
        lines.append(("#" * int(level) + " " if level.isdigit() else "") + p.text)
    text = "\n".join(lines)
    title = (d.core_properties.title or "").strip() or guess_title(text)
    return title, _require_text(parse_structure(text), name)


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


def read_pdf(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a PDF, page numbers kept."""
    import pypdf
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError(f"{name}: not a PDF file (no %PDF header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(f"{name}: PDF is encrypted (password required)")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"{name}: unreadable PDF ({exc})") from exc
    if not any(p.strip() for p in pages):
        raise ExtractionError(f"{name}: no extractable text (image-only or empty PDF)")
    first = next((normalize(x) for p in pages for x in p.split("\n") if x.strip()), "")
    title = normalize(meta_title) or first[:80]
    return title, _require_text(pdf_sections(pages, title), name)


def read_document(path: Path, data: bytes, kind: str, doc_id: str) -> Document:
    """A single-document file as a Document of the given kind."""
    ext = path.suffix.lower()
    if ext in TEXT_EXT:
        title, sections = read_text(data, path.name)
    elif ext == ".docx":
        title, sections = read_docx(data, path.name)
    elif ext == ".pdf":
        title, sections = read_pdf(data, path.name)
    else:  # the pipeline dispatches; reaching here is a programming error
        raise ValueError(f"no document reader for {ext}")
    return Document(doc_id=doc_id, kind=kind, title=title or path.stem, source=path.name, sections=sections)
