"""Result units a reader can use (pure): ranked chunks -> de-duplicated, merged, capped hits.

Chunks are what we score; a reader wants passages. Identical passages (two copies of one file, a
paragraph repeated in two documents) appear once; passages of documents marked as near-duplicates of
each other count as one document; adjacent chunks of one section that both rank merge into one hit;
no document takes more than ``per_doc`` of the first places (the rest move below, so nothing is lost
when one document is all there is).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_SPACE = re.compile(r"\s+")


@dataclass
class Unit:
    """One hit as shown: its best chunk's row and score, and the chunks (ordinal -> row) it covers."""

    score: float
    row: dict[str, Any]
    parts: dict[str, float]
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return str(self.row["doc_id"])

    @property
    def span(self) -> tuple[int, int]:
        return min(self.rows), max(self.rows)


def text_key(text: str) -> str:
    """Identity of a passage for de-duplication: its text without spaces, case folded."""
    return hashlib.sha1(_SPACE.sub("", text).lower().encode("utf-8")).hexdigest()


def build_units(ranked: Sequence[tuple[str, float, dict[str, float]]], rows: dict[str, dict[str, Any]],
                group: Callable[[str], str] = lambda d: d, max_chars: int = 0) -> list[Unit]:
    """Visible chunks (best first) as units: exact duplicates dropped, adjacent same-section chunks merged
    (while the passage stays within ``max_chars``; 0 = no limit).

    ``group`` maps a document to its near-duplicate group (itself when it has none): a chunk of another
    copy at the same place in the same section is the same passage.
    """
    units: list[Unit] = []
    seen_text: set[str] = set()
    at: dict[tuple[str, str, int], Unit] = {}  # (group, section, ordinal) -> unit holding that chunk
    for cid, score, parts in ranked:
        row = rows.get(cid)
        if row is None:
            continue  # not published (or deleted meanwhile): never shown, never counted
        key, g, ord_ = text_key(row["text"]), group(row["doc_id"]), int(row["ord"])
        if key in seen_text or (g, row["section"], ord_) in at:
            continue  # the same passage, or the same place in another copy of the document
        seen_text.add(key)
        near = next((at[(g, row["section"], o)] for o in (ord_ - 1, ord_ + 1) if (g, row["section"], o) in at), None)
        fits = near is not None and (not max_chars or sum(len(r["text"]) for r in near.rows.values()) + len(row["text"])
                                     <= max_chars)
        if near is not None and fits and near.doc_id == row["doc_id"]:
            near.rows[ord_] = row  # the better-ranked neighbour keeps its place and score
            at[(g, row["section"], ord_)] = near
            continue
        unit = Unit(score, row, parts, {ord_: row})
        units.append(unit)
        at[(g, row["section"], ord_)] = unit
    return units


def cap_per_document(units: list[Unit], per_doc: int, page: int = 10,
                     group: Callable[[str], str] = lambda d: d) -> list[Unit]:
    """At most ``per_doc`` units of one document (group) in each page of ``page`` places: a unit over the
    cap waits for the next page, where it comes first again (0 = no cap). Nothing is dropped, so a
    document that is all there is still fills the list."""
    if per_doc <= 0:
        return units
    waiting = list(units)
    out: list[Unit] = []
    while waiting:
        count: dict[str, int] = {}
        taken: list[int] = []
        for j, u in enumerate(waiting):
            g = group(u.doc_id)
            if count.get(g, 0) < per_doc:
                count[g] = count.get(g, 0) + 1
                taken.append(j)
                if len(taken) == page:
                    break
        if len(taken) < page:  # too few other documents to fill the page: the best waiting ones fill it
            rest = [j for j in range(len(waiting)) if j not in set(taken)]
            taken = sorted(taken + rest[: page - len(taken)])
        out += [waiting[j] for j in taken]
        chosen = set(taken)
        waiting = [u for j, u in enumerate(waiting) if j not in chosen]
    return out


def join_texts(texts: Sequence[str]) -> str:
    """Consecutive chunk texts as one passage, the overlap each chunk repeats from the one before removed."""
    out = ""
    for t in texts:
        if not out:
            out = t
            continue
        cut = next((n for n in range(min(len(out), len(t)), 0, -1) if out.endswith(t[:n])), 0)
        rest = t[cut:]
        sep = " " if out[-1:].isascii() and rest[:1].isascii() and out[-1:] not in " \n" and rest[:1] not in " \n" else ""
        out += sep + rest
    return out


def window(chunks: Sequence[tuple[int, str]], span: tuple[int, int], min_chars: int, max_chars: int) -> tuple[int, int]:
    """Ordinals (first, last) of the passage shown for a hit covering ``span`` (small-to-big).

    ``chunks`` are (ordinal, text) of the hit's section, in order. A passage shorter than ``min_chars``
    grows by its neighbours, the one before first (a fragment usually ends a thought begun there), until
    it reaches ``min_chars`` or the next step would pass ``max_chars``.
    """
    texts = dict(chunks)
    lo, hi = span
    size = sum(len(texts.get(o, "")) for o in range(lo, hi + 1))
    while size < min_chars:
        step = next((o for o in (lo - 1, hi + 1) if o in texts and size + len(texts[o]) <= max_chars), None)
        if step is None:
            break
        size += len(texts[step])
        lo, hi = min(lo, step), max(hi, step)
    return lo, hi
