"""Structure of Chinese policy documents: page furniture out, headings into a tree of sections."""

from __future__ import annotations

import re

from kb.lang.repair import line_join
from kb.lang.text import normalize
from kb.models import Section

_NUM = "一二三四五六七八九十百零〇"
# (level, pattern) for headings of Chinese government documents, laws and Markdown; levels leave room
# between them so that laws (编 > 章 > 节 > 条) and plans (章 > 一、 > （一） > 1.) nest in one scheme
_HEADINGS: list[tuple[int, re.Pattern[str]]] = [
    (10, re.compile(rf"^第[{_NUM}\d]+编")),
    (20, re.compile(rf"^第[{_NUM}\d]+[章篇]")),
    (25, re.compile(rf"^第[{_NUM}\d]+节")),
    (30, re.compile(rf"^[{_NUM}]+、")),
    (40, re.compile(rf"^（[{_NUM}]+）")),
    (50, re.compile(r"^\d{1,2}[.．、](?!\d)")),
    (60, re.compile(r"^（\d{1,2}）")),
    (90, re.compile(r"^专栏\d*")),  # a boxed list sits below whatever section holds it
]
ARTICLE_LEVEL = 35  # 第X条: below 节, above a plan's (一)
_ARTICLE = re.compile(rf"^(第[{_NUM}\d]+条)(?:\s+|(?=[\u4e00-\u9fff“（(]))(.+)$")
# standards: clause numbers 4, 4.2, 4.2.3 (a short title or the clause's own text after them) and 附录 A
_CLAUSE = re.compile(r"^((?:[1-9]\d?|[A-Z])(?:\.\d{1,3}){0,4})(?:\s+|(?=[\u4e00-\u9fff]))(.+)$")
_APPENDIX = re.compile(r"^附\s*录\s*([A-Z])(?![A-Za-z])\s*(.*)$")
_NOT_A_CLAUSE = re.compile(r"^[节条款章项页%‰年月日个口台万亿米吨度倍]")
_STANDARD_CODE = re.compile(r"\b((?:GB|AQ|NB|SY|MT|DZ|DB\d{2}|Q/\w+)(?:/[TZ])?\s*\d{3,6}(?:\.\d+)?-\d{4})\b")
_MD_HEADING = re.compile(r"^(#{1,6})\s*(.+)$")
_NUMBERING_SPACE = re.compile(r"^(\d{1,2}[.．、])\s+")
_TOC_LINE = re.compile(r"[·.…・]{2,}\s*\d+\s*$")
_TOC_TITLE = re.compile(r"^目\s*录$")
_COPY_TO = re.compile(r"^抄\s*送[:：]")
_PUBLISHED = re.compile(r"^（此件.{0,6}发布）$")
_TERMINAL = "。！？；：!?;:，,、"
_MAX_HEADING = 40


def clean_heading(line: str) -> str:
    """Canonical heading text: half-width brackets to full-width, no Markdown bold, no spaces in CJK text.

    Spaces between Latin words stay: ``Reservoir pressure control`` keeps them.
    """
    line = line.replace("**", "").replace("(", "（").replace(")", "）")
    return normalize(_NUMBERING_SPACE.sub(r"\1", line.strip()))  # "2. U型井" -> "2.U型井", as before


def heading_level(line: str) -> int | None:
    """Level of a heading line, or None for body text (long lines and sentences are body)."""
    md = _MD_HEADING.match(line)
    if md:
        return 10 * len(md.group(1))
    h = clean_heading(line)
    if len(h) > _MAX_HEADING or h[-1:] in _TERMINAL:
        return None
    for level, pat in _HEADINGS:
        if pat.match(h):
            return level
    return None


def clause_split(line: str, clauses: bool) -> tuple[int, str, str] | None:
    """(level, heading, body) of a law's article (第三十条 …) or, when ``clauses``, a standard's clause.

    ``4.2 排采控制`` is a heading; ``4.2.3 当储层压力……。`` is clause 4.2.3 with its text as body;
    ``附录 A （规范性附录） 测定方法`` is an appendix at the top level.
    """
    line = line.strip()
    art = _ARTICLE.match(line)
    if art:
        return ARTICLE_LEVEL, art.group(1), art.group(2).strip()
    if not clauses:
        return None
    app = _APPENDIX.match(line)
    if app:
        rest = clean_heading(app.group(2))
        return 11, f"附录{app.group(1)}" + (f" {rest}" if rest else ""), ""
    m = _CLAUSE.match(line)
    if m is None or _NOT_A_CLAUSE.match(m.group(2)) or (m.group(1).isalpha() and "." not in m.group(1)):
        return None
    num, rest = m.group(1), m.group(2).strip()
    level = 10 * (num.count(".") + 1) + 1
    if len(rest) <= 30 and rest[-1:] not in _TERMINAL:
        return level, f"{num} {clean_heading(rest)}", ""
    return level, num, rest


def is_clause_document(paras: list[str]) -> bool:
    """A standard: at least three clause numbers two levels deep (4.2, 5.1.3) start paragraphs."""
    deep = sum(1 for p in paras if (m := _CLAUSE.match(p.strip())) and "." in m.group(1) and
               not _NOT_A_CLAUSE.match(m.group(2)))
    return deep >= 3


def standard_code(text: str) -> str | None:
    """The standard's code (``GB 50471-2008``, ``GB/T 19559-2021``) if the text's first lines name one."""
    m = _STANDARD_CODE.search(text[:600])
    return re.sub(r"\s+", " ", m.group(1)) if m else None


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
    return bool(prev) and prev[-1] not in "。！？；：!?;:”」）)" and heading_level(nxt) is None \
        and clause_split(nxt, True) is None


def _ends_block(para: str, blank_after: bool) -> bool:
    """A paragraph nothing joins: a heading, a clause heading (``4.2 降压速度``), a short line before a blank one."""
    if heading_level(para) is not None:
        return True
    split = clause_split(para, True)
    return (split is not None and not split[2]) or (blank_after and len(para) <= _MAX_HEADING)


def paragraphs(text: str) -> list[str]:
    """Normalised non-empty paragraphs, rejoining lines an export broke inside a sentence, word or unit."""
    lines = [normalize(x.replace("**", "")) for x in strip_furniture(text.split("\n"))]
    paras: list[str] = []
    blank = False
    for line in lines:
        if not line:
            blank = True
            continue
        if paras and not _ends_block(paras[-1], blank) and _joins(paras[-1], line):
            paras[-1] = line_join(paras[-1], line)
        else:
            paras.append(line)
        blank = False
    return paras


def parse_structure(text: str) -> list[Section]:
    """Sections of a document, each with its heading path: 第X章 > 一、 > （一） > 1. > 专栏 for plans,
    第X编 > 第X章 > 第X节 > 第X条 for laws, 4 > 4.2 > 4.2.3 and 附录 A for standards."""
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    body: list[str] = []

    def flush() -> None:
        if body:
            sections.append(Section("\n".join(body), tuple(h for _, h in stack)))
            body.clear()

    def push(level: int, head: str) -> None:
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, head))

    paras = paragraphs(text)
    clauses = is_clause_document(paras)
    for para in paras:
        level = heading_level(para)
        if level is not None:
            md = _MD_HEADING.match(para)
            push(level, clean_heading(md.group(2) if md else para))
        elif (split := clause_split(para, clauses)) is not None:
            push(split[0], split[1])
            if split[2]:
                body.append(split[2])
        else:
            body.append(para)
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
    cands = [x for x in lines[:15] if len(x) <= 60 and x[-1:] not in _TERMINAL and heading_level(x) is None
             and not _STANDARD_CODE.fullmatch(x) and clause_split(x, True) is None]
    return max(cands, key=len) if cands else (lines[0][:60] if lines else "")
