"""Office Open XML: Word (.docx) through python-docx, PowerPoint (.pptx) through python-pptx.

Both are zip containers, checked for bombs before parsing (zipcheck.py).
"""

from __future__ import annotations

import io
import re
from typing import Any

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, parse_structure
from kb.ingest.readers.text import require_text
from kb.ingest.readers.zipcheck import check_zip
from kb.lang.text import normalize
from kb.models import Section

# Word's built-in style names, as English files and Chinese Word (标题, 标题 1) store them
_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.IGNORECASE)
_TITLE_STYLE = re.compile(r"^(?:title|标题)$", re.IGNORECASE)
# core-properties titles that name a template or a tool, not the document
_JUNK_TITLE = re.compile(r"^(?:microsoft word|untitled|无标题|文档\d*$|document\d*$|slide \d+$|幻灯片)", re.IGNORECASE)


def _open(data: bytes, name: str, ext: str, member_mb: int, load: Any) -> Any:
    check_zip(data, name, ext, member_mb)
    try:
        return load(io.BytesIO(data))
    except Exception as exc:  # the libraries raise zipfile/KeyError/ValueError/XML errors for broken files
        raise ExtractionError(f"{name}: not a readable {ext} file ({exc.__class__.__name__})") from exc


def docx_title(style_title: str, core_title: str, text: str) -> str:
    """The Title-style paragraph, else a core-properties title that is not a tool's or template's, else a guess."""
    core = core_title.strip()
    return style_title or (core if core and not _JUNK_TITLE.match(core) else "") or guess_title(text)


def read_docx(data: bytes, name: str, member_mb: int = 100) -> tuple[str, list[Section]]:
    """(title, sections) of a Word document; Word heading styles become Markdown headings."""
    import docx

    d = _open(data, name, ".docx", member_mb, docx.Document)
    lines, style_title = [], ""
    for p in d.paragraphs:
        style = (p.style.name if p.style is not None else "") or ""
        if _TITLE_STYLE.match(style) and p.text.strip():
            style_title = style_title or normalize(p.text)
            continue
        m = _HEADING_STYLE.match(style)
        lines.append(("#" * (int(m.group(1)) + 1) + " " if m else "") + p.text)  # H1 stays free for the title
    for table in d.tables:  # table cells as lines, after the body: their text is searchable
        lines.extend(" ".join(dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip())) for row in table.rows)
    text = "\n".join(lines)
    return docx_title(style_title, d.core_properties.title or "", text), require_text(parse_structure(text), name)


def _shape_texts(shape: Any) -> list[str]:
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return [p for p in shape.text_frame.text.split("\n") if p.strip()]
    if getattr(shape, "has_table", False) and shape.has_table:
        return [" ".join(c.text for c in row.cells if c.text.strip()) for row in shape.table.rows]
    return [t for sub in getattr(shape, "shapes", []) for t in _shape_texts(sub)]  # groups


def read_pptx(data: bytes, name: str, member_mb: int = 100) -> tuple[str, list[Section]]:
    """(title, sections) of a slide deck: one section per slide, its title as the heading, notes included."""
    import pptx

    deck = _open(data, name, ".pptx", member_mb, pptx.Presentation)
    sections: list[Section] = []
    for n, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        head = normalize(title_shape.text) if title_shape is not None and title_shape.has_text_frame else ""
        body = [normalize(t) for s in slide.shapes if s is not title_shape for t in _shape_texts(s)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            body.append(normalize(slide.notes_slide.notes_text_frame.text))
        text = "\n".join(t for t in body if t)
        if text or head:
            sections.append(Section(text or head, (head,) if head else (), n))
    first = next((s.path[0] for s in sections if s.path), "")
    core = (deck.core_properties.title or "").strip()
    title = core if core and not _JUNK_TITLE.match(core) else first
    return title, require_text(sections, name)
