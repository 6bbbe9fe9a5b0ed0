"""Plain text and Markdown: bytes decoded (UTF-8, UTF-16, GB18030), headings parsed into sections."""

from __future__ import annotations

import codecs

import charset_normalizer

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, parse_structure
from kb.lang.repair import garbage_share
from kb.models import Section

TEXT_EXT = (".txt", ".md", ".markdown")


def decode_text(data: bytes, name: str) -> str:
    """Decode text: UTF-8 (with or without BOM), UTF-16 (by BOM or by its NUL bytes), GB18030 (GBK, GB2312),
    then whatever charset-normalizer detects (Big5, Shift-JIS, cp1252 ...).

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
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc != "gb18030" or garbage_share(text) < 0.02:
            return text
        break  # GB18030 decodes almost any bytes: text in odd blocks means another legacy encoding
    guess = charset_normalizer.from_bytes(data).best()
    if guess is not None and garbage_share(str(guess)) < 0.15:
        return str(guess)
    raise ExtractionError(f"{name}: cannot decode text (tried UTF-8, UTF-8-BOM, UTF-16, GB18030, detection)")


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



def require_text(sections: list[Section], name: str) -> list[Section]:
    if not any(s.text.strip() for s in sections):
        raise ExtractionError(f"{name}: no extractable text")
    return sections


def read_text(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a plain-text or Markdown document."""
    text = decode_text(data, name)
    return guess_title(text), require_text(parse_structure(text), name)


