"""Readers: file bytes to Documents, one registry entry per extension (a new format is one new entry).

Each reader takes the file's path (for its name and extension), its bytes and a ``ReadContext``, and
returns the documents it holds plus one message per rejected part (a bad table row); a file it cannot
read at all raises a KBError, which the pipeline reports for that file alone. ``read_file`` runs every
entry in a killable child process with time and memory limits (kb/ingest/sandbox.py); the text repairs
and personal-data masking (kb/ingest/repair.py, kb/lang/pii.py) run there too, after the reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from kb.errors import ExtractionError, UnsupportedFileError
from kb.ingest.plan import standard_code
from kb.ingest.readers.context import ReadContext
from kb.ingest.readers.legacy import read_doc
from kb.ingest.readers.office import read_docx, read_pptx
from kb.ingest.readers.pdf import read_pdf
from kb.ingest.readers.refused import REFUSED, refuse, sniff
from kb.ingest.readers.tables import TABLE_EXT, table_documents
from kb.ingest.readers.text import TEXT_EXT, read_text
from kb.ingest.readers.web import HTML_EXT, read_html
from kb.ingest.repair import finish_document
from kb.ingest.sandbox import Progress, run_reader
from kb.models import Document, Section

__all__ = ["READERS", "SUPPORTED", "ReadContext", "parse_in_process", "read_file", "reader_for", "unsupported_message"]
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


def with_code(title: str, sections: list[Section]) -> str:
    """A standard's title led by its code (``GB 50471-2008 煤矿瓦斯抽采工程设计规范``), so citations name it."""
    code = standard_code(title + "\n" + "\n".join(s.text for s in sections[:3]))
    return f"{code} {title}" if code and code.replace(" ", "") not in title.replace(" ", "") else title


def _single(read: SectionReader) -> Reader:
    """A reader of files that hold one document (text, Word, PDF, HTML, slides), named after the file."""

    def reader(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
        if not data.strip():
            raise ExtractionError(f"{path.name}: empty file")
        title, sections = read(data, path.name, ctx)
        title = with_code(title or path.stem, sections)
        kind = ctx.kind or ctx.folder_kind or default_kind(path.suffix.lower(), title, sections)
        return [Document(doc_id=path.stem, kind=kind, title=title, source=path.name, sections=sections)], []

    return reader


def _tables(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
    return table_documents(path, data, ctx)


READERS: dict[str, Reader] = {
    **{ext: _single(lambda data, name, ctx: read_text(data, name)) for ext in TEXT_EXT},
    **{ext: _single(lambda data, name, ctx: read_html(data, name)) for ext in HTML_EXT},
    ".docx": _single(lambda data, name, ctx: read_docx(data, name, ctx.zip_member_mb)),
    ".pptx": _single(lambda data, name, ctx: read_pptx(data, name, ctx.zip_member_mb)),
    ".doc": _single(lambda data, name, ctx: read_doc(data, name)),
    ".pdf": _single(lambda data, name, ctx: read_pdf(data, name, ctx)),
    **{ext: _tables for ext in TABLE_EXT},
    **{ext: refuse for ext in REFUSED},  # known formats we cannot read: a clear error saying what to do
}
SUPPORTED = frozenset(ext for ext in READERS if ext not in REFUSED)


def unsupported_message(name: str) -> str:
    """Why a file name's type cannot be read: what the format is and what to do, or the supported list."""
    ext = Path(name).suffix.lower()
    if ext in REFUSED:
        return f"{name}: {REFUSED[ext]}"
    return f"{name}: unsupported file type {ext or '(none)'}; supported: {', '.join(sorted(SUPPORTED))}"


def reader_for(path: Path, data: bytes = b"") -> Reader:
    """The registry entry for a file's content type (by its bytes where they contradict the extension)."""
    ext = sniff(data, path.suffix.lower()) if data else path.suffix.lower()
    if ext not in READERS:
        raise UnsupportedFileError(unsupported_message(path.name))
    return READERS[ext]


def parse_in_process(path: Path, data: bytes, ctx: ReadContext) -> tuple[list[Document], list[str]]:
    """The documents of one file, read, repaired and masked here (the sandbox child calls this)."""
    docs, errors = reader_for(path, data)(path, data, ctx)
    return [finish_document(d, ctx.redact_pii) for d in docs], errors


def read_file(path: Path, data: bytes, ctx: ReadContext,
              on_progress: Progress | None = None) -> tuple[list[Document], list[str]]:
    """The documents of one file, plus a message per rejected part, parsed in a killable child process."""
    reader_for(path, data)  # an unsupported type fails here, without starting a process
    return run_reader(path.name, data, ctx.limits(), timeout_s=ctx.parse_timeout_s,
                      memory_mb=ctx.parse_memory_mb, on_progress=on_progress)
