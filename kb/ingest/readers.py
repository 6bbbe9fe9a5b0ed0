"""File readers: bytes on disk to Documents (text, Markdown, Word, PDF); tables live in tables.py."""

from __future__ import annotations

import codecs
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, heading_level, parse_structure
from kb.models import Document, Section
from kb.settings import get_settings
from kb.text import normalize

TEXT_EXT = {".txt", ".md", ".markdown"}
_PDF_HEADING = re.compile(r"^([1-9]\d?(\.\d{1,2}){0,2})\s*([^\d\s.].{0,60})$")
_PAGE_FURNITURE = re.compile(r"^(第\s*\d+\s*页(\s*/\s*共\s*\d+\s*页)?|page\s+\d+(\s+of\s+\d+)?|[-–—\s]*\d+[-–—\s]*)$",
                             re.IGNORECASE)
_ABSTRACT = re.compile(r"^(摘\s*要|abstract)\b", re.IGNORECASE)
_REFERENCES = re.compile(r"^(参\s*考\s*文\s*献|references|bibliography)$", re.IGNORECASE)


# a zip member may expand this much: real .xlsx/.docx parts compress 5-50x, a bomb 1000x
MAX_ZIP_RATIO = 200
MAX_ZIP_TOTAL = 1 << 30  # bytes, all members together, as declared by the archive
MAX_ZIP_MEMBERS = 10000
_ROOT = Path(__file__).resolve().parents[2]  # where the child finds this very kb package


def decode_text(data: bytes, name: str) -> str:
    """Decode text: UTF-8 (with or without BOM), UTF-16 (by BOM or by its NUL bytes), then GB18030.

    A few stray NUL bytes are dropped later by ``normalize``; many, and not UTF-16, mean a binary file.
    """
    encodings: tuple[str, ...] = ("utf-8-sig", "gb18030")
    nuls = data.count(0)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16", *encodings)
    elif nuls and (utf16 := _bomless_utf16(data, nuls)):
        encodings = (utf16,)
    elif nuls * 100 > len(data) and nuls > 16:  # a handful in a tiny file may be a broken export
        raise ExtractionError(f"{name}: binary data ({nuls} NUL bytes), not a text file")
    for enc in encodings:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ExtractionError(f"{name}: cannot decode text (tried UTF-8, UTF-8-BOM, UTF-16, GB18030)")


def _bomless_utf16(data: bytes, nuls: int) -> str | None:
    """'utf-16-le' or 'utf-16-be' for UTF-16 written without a BOM (Windows tools do), else None.

    The tell: ASCII characters (newlines, digits) leave NUL bytes at odd offsets (LE) or even ones
    (BE); UTF-8 text with a stray NUL is valid UTF-8 and stays UTF-8.
    """
    odd, even = data[1::2].count(0), data[0::2].count(0)
    if len(data) % 2 or max(odd, even) < 4 * min(odd, even) or nuls * 200 < len(data) // 2:
        return None
    if nuls * 10 < len(data):
        try:
            data.decode("utf-8")
            return None
        except UnicodeDecodeError:
            pass
    enc = "utf-16-le" if odd > even else "utf-16-be"
    try:
        return enc if "\x00" not in data.decode(enc) else None
    except UnicodeDecodeError:
        return None


def zip_bomb_reason(members: list[tuple[int, int]]) -> str | None:
    """Why an archive of (uncompressed, compressed) member sizes must not be opened, or None.

    zipfile stops a member at its declared size (and fails its CRC), so the declared sizes bound
    what opening the archive can cost.
    """
    if len(members) > MAX_ZIP_MEMBERS:
        return f"{len(members)} members (limit {MAX_ZIP_MEMBERS})"
    total = sum(size for size, _ in members)
    if total > MAX_ZIP_TOTAL:
        return f"{total >> 20} MB uncompressed (limit {MAX_ZIP_TOTAL >> 20} MB)"
    for size, packed in members:
        if size > 1 << 20 and size > MAX_ZIP_RATIO * max(packed, 1):
            return f"a member expands {size // max(packed, 1)}x (limit {MAX_ZIP_RATIO}x)"
    return None


def check_zip(data: bytes, name: str, what: str) -> None:
    """Refuse a zip container (.xlsx, .docx) that is broken or would expand into a bomb, before parsing it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(i.file_size, i.compress_size) for i in zf.infolist()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ExtractionError(f"{name}: not a readable {what} file ({exc.__class__.__name__})") from exc
    reason = zip_bomb_reason(members)
    if reason:
        raise ExtractionError(f"{name}: refused, looks like a zip bomb: {reason}")


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

    check_zip(data, name, ".docx")
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


def read_pdf(data: bytes, name: str, timeout_s: float | None = None) -> tuple[str, list[Section]]:
    """(title, sections) of a PDF, page numbers kept; ``timeout_s`` defaults to KB_PDF_TIMEOUT_S."""
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError(f"{name}: not a PDF file (no %PDF header)")
    pages, meta_title = pdf_pages(data, name, get_settings().pdf_timeout_s if timeout_s is None else timeout_s)
    if not any(p.strip() for p in pages):
        raise ExtractionError(f"{name}: no extractable text (image-only or empty PDF)")
    first = next((normalize(x) for p in pages for x in p.split("\n") if x.strip()), "")
    title = normalize(meta_title) or first[:80]
    return title, _require_text(pdf_sections(pages, title), name)


def read_document(path: Path, data: bytes, kind: str, doc_id: str,
                  pdf_timeout_s: float | None = None) -> Document:
    """A single-document file as a Document of the given kind."""
    ext = path.suffix.lower()
    if ext in TEXT_EXT:
        title, sections = read_text(data, path.name)
    elif ext == ".docx":
        title, sections = read_docx(data, path.name)
    elif ext == ".pdf":
        title, sections = read_pdf(data, path.name, pdf_timeout_s)
    else:  # the pipeline dispatches; reaching here is a programming error
        raise ValueError(f"no document reader for {ext}")
    return Document(doc_id=doc_id, kind=kind, title=title or path.stem, source=path.name, sections=sections)
