"""Readers: file bytes to Documents, one registry entry per extension (a new format is one new entry).

Each reader takes the file's path (for its name and extension), its bytes and a ``ReadContext``, and
returns the documents it holds plus one message per rejected part (a bad table row); a file it cannot
read at all raises a KBError, which the pipeline reports for that file alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb.errors import ExtractionError, UnsupportedFileError
from kb.ingest.readers.docx import read_docx
from kb.ingest.readers.pdf import read_pdf
from kb.ingest.readers.tables import TABLE_EXT, table_documents
from kb.ingest.readers.text import TEXT_EXT, read_text
from kb.models import Document, Section


@dataclass(frozen=True)
class ReadContext:
    """What a reader may need beyond the bytes: the kind asked for, the folder's kind, the parser limits."""

    kind: str | None = None  # --kind: every document of the file has this kind
    folder_kind: str | None = None  # implied by the corpus folder (plan/, papers/, needs/ ...)
    pdf_timeout_s: float = 60.0


Reader = Callable[[Path, bytes, ReadContext], tuple[list[Document], list[str]]]
SectionReader = Callable[[bytes, str, ReadContext], tuple[str, list[Section]]]

# a plan (规划, 纲要, 计划) is recognised by its title and its chapter headings (第X章), not by its file type
_PLAN_TITLE = re.compile(r"规划|纲要|计划|方案")
_CHAPTER = re.compile(r"^第[一二三四五六七八九十百零〇\d]+章", re.MULTILINE)


def default_kind(ext: str, title: str, sections: list[Section]) -> str:
    """The kind of a single-document file nobody named: a plan by its structure, a PDF a paper, else a document."""
    heads = "\n".join(p for s in sections for p in s.path)
    if _PLAN_TITLE.search(title) and len(_CHAPTER.findall(heads)) >= 2:
        return "plan"
    return "paper" if ext == ".pdf" else "document"


def _single(read: SectionReader) -> Reader:
    """A reader of files that hold one document (text, Word, PDF), named after the file."""

    def reader(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
        if not data.strip():
            raise ExtractionError(f"{path.name}: empty file")
        title, sections = read(data, path.name, ctx)
        title = title or path.stem
        kind = ctx.kind or ctx.folder_kind or default_kind(path.suffix.lower(), title, sections)
        return [Document(doc_id=path.stem, kind=kind, title=title, source=path.name, sections=sections)], []

    return reader


def _tables(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
    return table_documents(path, data, ctx.kind, ctx.folder_kind)


READERS: dict[str, Reader] = {
    **{ext: _single(lambda data, name, ctx: read_text(data, name)) for ext in TEXT_EXT},
    ".docx": _single(lambda data, name, ctx: read_docx(data, name)),
    ".pdf": _single(lambda data, name, ctx: read_pdf(data, name, ctx.pdf_timeout_s)),
    **{ext: _tables for ext in TABLE_EXT},
}
SUPPORTED = frozenset(READERS)


def reader_for(path: Path) -> Reader:
    """The registry entry for a file's extension; UnsupportedFileError names the supported ones."""
    ext = path.suffix.lower()
    if ext not in READERS:
        raise UnsupportedFileError(f"{path.name}: unsupported file type {ext or '(none)'}; "
                                   f"supported: {', '.join(sorted(SUPPORTED))}")
    return READERS[ext]


def read_file(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
    """The documents of one file, plus a message per rejected part."""
    return reader_for(path)(path, data, ctx)
