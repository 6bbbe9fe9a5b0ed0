"""Structure of Chinese policy documents: page furniture out, headings into a tree of sections."""

from __future__ import annotations

import re

from kb.lang.text import normalize
from kb.models import Section

_NUM = "一二三四五六七八九十百零〇"
# (level, pattern) for headings of Chinese government documents and Markdown
_HEADINGS: list[tuple[int, re.Pattern[str]]] = [
    (1, re.compile(rf"^第[{_NUM}\d]+[章编篇]")),
    (2, re.compile(rf"^[{_NUM}]+、")),
    (3, re.compile(rf"^（[{_NUM}]+）")),
    (4, re.compile(r"^\d{1,2}[.．、](?!\d)")),
    (5, re.compile(r"^（\d{1,2}）")),
    (9, re.compile(r"^专栏\d*")),  # a boxed list sits below whatever section holds it
]
_MD_HEADING = re.compile(r"^(#{1,6})\s*(.+)$")
_TOC_LINE = re.compile(r"[·.…・]{2,}\s*\d+\s*$")
_TOC_TITLE = re.compile(r"^目\s*录$")
_COPY_TO = re.compile(r"^抄\s*送[:：]")
_PUBLISHED = re.compile(r"^（此件.{0,6}发布）$")
_TERMINAL = "。！？；：!?;:，,、"
_MAX_HEADING = 40


def clean_heading(line: str) -> str:
    """Canonical heading text: half-width brackets to full-width, no spaces, no Markdown bold."""
    line = line.replace("**", "").replace("(", "（").replace(")", "）")
    return re.sub(r"\s+", "", line)


def heading_level(line: str) -> int | None:
    """Level of a heading line, or None for body text (long lines and sentences are body)."""
    md = _MD_HEADING.match(line)
    if md:
        return len(md.group(1))
    h = clean_heading(line)
    if len(h) > _MAX_HEADING or h[-1:] in _TERMINAL:
        return None
    for level, pat in _HEADINGS:
        if pat.match(h):
            return level
    return None


def strip_furniture(lines: list[str]) -> list[str]:
    """Drop the table of contents, 'published' stamps and the 抄送 block at the end."""
    out: list[str] = []
    for line in lines:
        s = line.strip()
        if _COPY_TO.match(s):
            break  # 抄送 is the last block (版记) of a government document
        if _TOC_TITLE.match(s) or _TOC_LINE.search(s) or _PUBLISHED.match(s):
            continue
        out.append(line)
    return out


def _joins(prev: str, nxt: str) -> bool:
    """True when a paragraph was broken mid-sentence by a page or line wrap."""
    return bool(prev) and prev[-1] not in "。！？；：!?;:”」）)" and heading_level(nxt) is None


def paragraphs(text: str) -> list[str]:
    """Normalised non-empty paragraphs, rejoining ones a PDF export split mid-sentence."""
    lines = [normalize(x.replace("**", "")) for x in strip_furniture(text.split("\n"))]
    paras: list[str] = []
    for line in (x for x in lines if x):
        if paras and heading_level(paras[-1]) is None and _joins(paras[-1], line):
            sep = " " if paras[-1][-1:].isascii() and line[:1].isascii() else ""
            paras[-1] = paras[-1] + sep + line
        else:
            paras.append(line)
    return paras


def parse_structure(text: str) -> list[Section]:
    """Sections of a document, each with its heading path (第X章 > 一、 > （一） > 1. > 专栏)."""
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    body: list[str] = []

    def flush() -> None:
        if body:
            sections.append(Section("\n".join(body), tuple(h for _, h in stack)))
            body.clear()

    for para in paragraphs(text):
        level = heading_level(para)
        if level is None:
            body.append(para)
            continue
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        md = _MD_HEADING.match(para)
        stack.append((level, clean_heading(md.group(2) if md else para)))
    flush()
    return sections


def guess_title(text: str) -> str:
    """A document title: a Markdown H1, else the longest short line near the top."""
    lines = [normalize(x) for x in strip_furniture(text.split("\n")[:40])]
    lines = [x for x in lines if x]
    for x in lines:
        md = _MD_HEADING.match(x)
        if md and len(md.group(1)) == 1:
            return md.group(2).strip()
    cands = [x for x in lines[:15] if len(x) <= 60 and x[-1:] not in _TERMINAL and heading_level(x) is None]
    return max(cands, key=len) if cands else (lines[0][:60] if lines else "")
