"""Terminal output of highlighted text: cut first, colour after, so a cut never lands inside an escape code."""

from __future__ import annotations

import html
import re

_MARKED = re.compile(r"(<mark>.*?</mark>)", re.S)
ON, OFF = "\x1b[1;33m", "\x1b[0m"


def segments(highlighted: str) -> list[tuple[str, bool]]:
    """(plain text, marked?) pieces of server-made ``<mark>`` HTML, entities decoded."""
    out = []
    for part in _MARKED.split(highlighted):
        marked = part.startswith("<mark>") and part.endswith("</mark>")
        text = html.unescape(part[6:-7] if marked else part)
        if text:
            out.append((text, marked))
    return out


def snippet(highlighted: str, limit: int = 300, on: str = ON, off: str = OFF) -> str:
    """The first ``limit`` visible characters, marked terms wrapped in ``on``/``off``, "…" if the text goes on."""
    out: list[str] = []
    left = limit
    pieces = segments(highlighted)
    for text, marked in pieces:
        if left <= 0:
            break
        piece = text[:left]
        left -= len(piece)
        out.append(f"{on}{piece}{off}" if marked else piece)
    longer = sum(len(t) for t, _ in pieces) > limit
    return "".join(out) + ("…" if longer else "")
