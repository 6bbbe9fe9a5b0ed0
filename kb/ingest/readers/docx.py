"""Word (.docx): paragraphs in order, Word heading styles as Markdown headings."""

from __future__ import annotations

import io

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, parse_structure
from kb.ingest.readers.text import require_text
from kb.ingest.readers.zipcheck import check_zip
from kb.models import Section


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
    return title, require_text(parse_structure(text), name)


