"""Text repair before chunking: what PDF text layers, old OCR and exports do to Chinese and English text.

Each repair is a small pure function; kb/ingest/repair.py and the readers apply them. Our own because
the damage is specific to CJK text layers (spaced characters, radicals for ideographs, units broken
over lines) and no text-cleaning library knows it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# compatibility characters that PDF text layers emit for ordinary ones: Latin ligatures (ﬁ ﬂ), Kangxi and
# CJK compatibility ideographs (⾦ for 金), full-width letters and digits; NFKC maps each to the ordinary
# character. Chinese full-width punctuation (，：；) is left as written.
_COMPAT = re.compile("[\ufb00-\ufb06\u2f00-\u2fdf\uf900-\ufaff\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_UNIT_FRAGMENT = re.compile(r"^(?:[\d.]{1,3}|[/·]?[a-zA-Z]{1,2}\d?|[/·][a-zA-Z\d]{1,3}|[%‰℃°³²])$")
_HYPHENATED = re.compile(r"[a-z]-$")
_DECIMAL_CUT = re.compile(r"\d\.$")
_DIGITS = re.compile(r"\d+")


def fold_compat(text: str) -> str:
    """Ligatures, radical and compatibility ideographs, full-width alphanumerics to their ordinary characters."""
    return _COMPAT.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


def line_join(prev: str, nxt: str) -> str:
    """Two lines of one paragraph joined: no space inside CJK text, a hyphenated word, a number or a unit.

    ``含气量为12.6m`` + ``3`` + ``/t`` gives ``含气量为12.6m3/t``; ``permea-`` + ``bility`` gives ``permeability``.
    """
    if not prev or not nxt:
        return prev + nxt
    if _HYPHENATED.search(prev) and nxt[0].islower():
        return prev[:-1] + nxt
    glued = _UNIT_FRAGMENT.match(nxt) and (prev[-1].isdigit() or prev[-1].isalpha() or prev[-1] in "./")
    if glued or _DECIMAL_CUT.search(prev) and nxt[0].isdigit():
        return prev + nxt
    sep = " " if prev[-1].isascii() and nxt[0].isascii() else ""
    return prev + sep + nxt


_PAGE_WORDS = re.compile(r"页|page|^\W*\d+\W*$", re.IGNORECASE)


def _furniture_key(line: str) -> str:
    """A line as running furniture is recognised: numbers blanked in page counters (``第 3 页`` and
    ``第 4 页`` are one footer), other lines as they are (``第1章`` and ``第2章`` are two headings)."""
    s = "".join(line.split())
    return _DIGITS.sub("#", s) if _PAGE_WORDS.search(s) else s


def running_lines(pages: list[list[str]], edge: int = 3, share: float = 0.4) -> set[str]:
    """Keys of lines that repeat at the top or bottom of many pages (running headers and footers).

    A line counts when it is among the first or last ``edge`` lines of at least ``share`` of the pages
    (and of at least 3 pages): ``北京大学硕士学位论文`` on every page, ``第 n 页 共 N 页``, a journal's name.
    """
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        body = [x for x in lines if x.strip()]
        seen.update({_furniture_key(x) for x in body[:edge] + body[-edge:] if len(x.strip()) <= 60})
    need = max(3, share * len(pages))
    return {k for k, n in seen.items() if n >= need and k.strip("#")}


def drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Pages without their running headers and footers (see ``running_lines``); the first occurrence of each
    stays, since a running chapter title first appears as the chapter's heading."""
    keys = running_lines(pages)
    if not keys:
        return pages
    first: set[str] = set()
    out = []
    for lines in pages:
        kept = []
        for x in lines:
            key = _furniture_key(x)
            if key not in keys or key not in first:
                kept.append(x)
            if key in keys:
                first.add(key)
        out.append(kept)
    return out


def is_debris(line: str) -> bool:
    """A line of a table or formula that lost its labels: numbers and symbols, no word (no CJK, no 3-letter word)."""
    s = "".join(line.split())
    if not s or _CJK_CHAR.search(s) or re.search(r"[A-Za-z]{3}", s):
        return False
    return sum(c.isdigit() or not c.isalnum() for c in s) >= 0.6 * len(s)


def drop_debris(lines: list[str], run: int = 3) -> list[str]:
    """Lines without runs of ``run`` or more debris lines: columns of bare numbers match any query with a number."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and is_debris(lines[j]):
            j += 1
        if j - i >= run:
            i = j
            continue
        out.extend(lines[i:max(j, i + 1)])
        i = max(j, i + 1)
    return out


# characters a Chinese or English text layer has no business holding: a CNKI-style broken font map puts CJK
# glyphs in Armenian, Devanagari, private-use or other blocks; U+FFFD and controls mark unmapped glyphs
_PLAUSIBLE = re.compile(
    "[\t\n\r\u0020-\u024f\u0370-\u03ff\u2000-\u206f\u2070-\u218f\u2190-\u23ff\u2460-\u27bf\u2e80-\u2fdf"
    "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufb00-\ufb06\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f]")


def garbage_share(text: str) -> float:
    """Share of non-space characters outside the blocks a Chinese/English document uses (0 for empty text)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if not _PLAUSIBLE.match(c)) / len(chars)


def expected_chars(ink: float, width_pt: float, height_pt: float) -> float:
    """The fewest characters a page's ink would hold as body text.

    ``ink`` is the share of pixels darker than 128 of the page rendered at 72 dpi. On pages rendered
    from known text (bench/pages.py) a character's cell was 7 % (English serif) to 28 % (CJK sans) ink;
    28 % makes this a lower bound, so only a clearly short text layer is replaced.
    """
    return ink * width_pt * height_pt / (10.5 * 10.5 * 0.28)


def needs_ocr(text: str, ink: float, width_pt: float, height_pt: float) -> str | None:
    """Why a page's text layer should be replaced by OCR, or None when it looks right."""
    if garbage_share(text) > 0.15:
        return "garbage text layer"
    n = sum(1 for c in text if not c.isspace())
    if n == 0 and ink > 0.002:
        return "no text layer"
    expected = expected_chars(ink, width_pt, height_pt)
    if expected > 300 and n < 0.1 * expected:
        return "text layer far shorter than the page's ink"
    return None
