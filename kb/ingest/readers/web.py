"""Web pages (.html, .htm, and Word/Excel "web page" files): main text, title and tables through trafilatura.

trafilatura because it separates a notice's body from the site's menus, breadcrumbs, share buttons and
footer, reads the declared charset (GB2312/GBK pages), and keeps tables; where it finds no main text
(a page that is only a table, an Excel export), lxml's whole-body text is used instead.
"""

from __future__ import annotations

import re
from typing import Any

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, parse_structure
from kb.ingest.readers.text import require_text
from kb.lang.text import normalize
from kb.models import Section

HTML_EXT = (".html", ".htm", ".xhtml", ".mht", ".mhtml")
_SITE_SUFFIX = re.compile(r"\s*[_|\-－—]\s*[^_|\-－—]{0,30}(?:政府|网|门户|官网|平台|首页|公告|动态)[^_|\-－—]{0,10}$")


def table_line(line: str) -> str:
    """A Markdown table row (``| a | b |``) as plain text: cells separated by '；'."""
    if not line.lstrip().startswith("|"):
        return line
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if all(set(c) <= set("-: ") for c in cells):
        return ""  # the separator row under a header
    return "；".join(c for c in cells if c)


def page_title(title: str) -> str:
    """A page title without the site's name and section: ``通知_通知公告_某县人民政府`` gives ``通知``."""
    for _ in range(3):
        title = _SITE_SUFFIX.sub("", title).strip()
    return title


def _fallback_text(data: bytes) -> str:
    import lxml.html

    root = lxml.html.document_fromstring(data)
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    return "\n".join(t.strip() for t in root.itertext() if t.strip())


def read_html(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a web page: its main text, headings (一、 第X章) parsed into sections."""
    import trafilatura

    try:
        doc: Any = trafilatura.bare_extraction(data, include_tables=True, with_metadata=True, favor_recall=True)
    except Exception as exc:  # lxml and trafilatura raise many types on broken markup
        raise ExtractionError(f"{name}: not a readable web page ({type(exc).__name__})") from exc
    text = (doc.text if doc is not None else "") or ""
    if len(text) < 50:
        try:
            text = _fallback_text(data)
        except Exception as exc:  # lxml's ParserError on an empty or non-HTML document
            raise ExtractionError(f"{name}: not a readable web page ({type(exc).__name__})") from exc
    text = "\n".join(table_line(x) for x in text.split("\n"))
    title = page_title(normalize(doc.title or "")) if doc is not None and doc.title else ""
    return title or guess_title(text), require_text(parse_structure(text), name)
