"""Formats we know and cannot read (a clear per-file error that says what to do), and content sniffing.

Archives hold files whose extension lies: a CNKI download named .pdf that is CAJ, a "Word" .doc or an
"Excel" .xls that is HTML saved by a web site, a .doc that is really .docx. ``sniff`` reads the first
bytes so each goes to the reader that can read it.
"""

from __future__ import annotations

from pathlib import Path

from kb.errors import UnsupportedFileError
from kb.models import Document

_CNKI = ("CNKI CAJ format (中国知网 CAJ): it cannot be read here; open it in CAJViewer and export or "
         "print it to PDF (or download the PDF version from CNKI), then ingest the PDF")
REFUSED = {
    ".caj": _CNKI, ".kdh": _CNKI, ".nh": _CNKI, ".caa": _CNKI,
    ".wps": "WPS Writer format: save it as .docx (or .doc) in WPS Office, then ingest that",
    ".et": "WPS Spreadsheets format: save it as .xlsx in WPS Office, then ingest that",
    ".ppt": "PowerPoint 97 format: save it as .pptx (or export to PDF), then ingest that",
    ".rtf": "RTF: save it as .docx, then ingest that",
}
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<meta", b"<?xml version", b"<table", b"mime-version")


def refuse(path: Path, data: bytes, ctx: object) -> tuple[list[Document], list[str]]:
    """The reader of a refused format: always a per-file error naming the format and what to do."""
    ext = sniff(data, path.suffix.lower())
    raise UnsupportedFileError(f"{path.name}: {REFUSED[ext]}")


def sniff(data: bytes, ext: str) -> str:
    """The extension whose reader fits the bytes: ``ext`` unless the content says otherwise."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"caj", b"hn")) or data[:4] == b"KDH ":
        return ".caj"
    if head.startswith(b"{\\rtf"):
        return ".rtf"
    if ext in (".doc", ".xls") and head.startswith(_HTML_STARTS):
        return ".html"  # Word/Excel "save as web page", and web sites' exports named .doc/.xls
    if ext == ".doc" and data[:2] == b"PK":
        return ".docx"
    if ext == ".xls" and data[:2] == b"PK":
        return ".xlsx"
    return ext
