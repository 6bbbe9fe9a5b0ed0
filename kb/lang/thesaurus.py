"""The CBM technology thesaurus: each technology with its other names and the problems it solves, in plain words.

Needs are written as problems ("泵三天两头被卡死"), results as named technologies ("煤粉防控"). A result
record whose text names a technology is expanded with that technology's problems, so a need meets the
result through domain knowledge rather than shared words. Written for this project from domain
knowledge (kb/resources/cbm_thesaurus.tsv); our own because no such Chinese CBM resource exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from kb.lang.text import fold, jieba_instance

_LIST = "；"


@dataclass(frozen=True)
class Technology:
    name: str
    aliases: tuple[str, ...]
    problems: tuple[str, ...]


@lru_cache(maxsize=1)
def technologies() -> tuple[Technology, ...]:
    """Every entry of cbm_thesaurus.tsv (header skipped)."""
    text = resources.files("kb.resources").joinpath("cbm_thesaurus.tsv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines()[1:]:
        name, aliases, problems = (line.split("\t") + ["", ""])[:3]
        if name.strip():
            out.append(Technology(name.strip(), tuple(a.strip() for a in aliases.split(_LIST) if a.strip()),
                                  tuple(p.strip() for p in problems.split(_LIST) if p.strip())))
    return tuple(out)


@lru_cache(maxsize=1)
def _matcher() -> tuple[re.Pattern[str], dict[str, int]]:
    """One pattern over every name and alias (Latin ones whole words), and which technology each names."""
    owner: dict[str, int] = {}
    for n, tech in enumerate(technologies()):
        for term in (tech.name, *tech.aliases):
            owner.setdefault(fold(term), n)
    parts = [rf"(?<![0-9a-z]){re.escape(t)}(?![0-9a-z])" if t.isascii() else re.escape(t)
             for t in sorted(owner, key=len, reverse=True)]
    return re.compile("|".join(parts)), owner


def _word_edges(text: str) -> set[int]:
    """Offsets where jieba (with the CBM dictionary) starts or ends a word: 煤粉 inside 褐煤粉煤灰
    (褐煤 + 粉煤灰) is not a mention of coal fines."""
    edges: set[int] = set()
    for _, start, end in jieba_instance().tokenize(text):
        edges.update((start, end))
    return edges


def named_in(text: str) -> list[Technology]:
    """Technologies whose name or an alias occurs in the text as whole words, in order of first mention."""
    return [technologies()[n] for n in _named(text)]


@lru_cache(maxsize=8192)  # matching reads the same record texts on every request; segmenting them was 90 % of it
def _named(text: str) -> tuple[int, ...]:
    pattern, owner = _matcher()
    folded = fold(text)
    found = list(pattern.finditer(folded))
    edges = _word_edges(folded) if any(not m.group(0).isascii() for m in found) else set()
    seen: dict[int, None] = {}
    for m in found:
        if m.group(0).isascii() or (m.start() in edges and m.end() in edges):
            seen.setdefault(owner[m.group(0)], None)
    return tuple(seen)


def problems_solved(name: str, text: str = "", limit: int = 3) -> list[str]:
    """The plain-language problems of the technologies a record names: those in its ``name`` (title and
    keywords) first, then, if too few, those its ``text`` mentions; at most ``limit`` technologies."""
    in_name = named_in(name)
    techs = list(dict.fromkeys(in_name + (named_in(text) if len(in_name) < limit else [])))
    return [p for tech in techs[:limit] for p in tech.problems]
