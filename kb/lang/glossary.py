"""Cross-language query expansion with the bundled bilingual CBM glossary.

Our own because the small multilingual model ranks same-language passages far above the
right passage in the other language: every query gets a glossary translation (``translate``)
that the dense and BM25 sides run on their own against passages in the other language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

from kb.lang.cedict import STOP

_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")
_MAX_PHRASE = 5
_CJK = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=1)
def glossary() -> dict[str, list[str]]:
    """English phrase -> Chinese terms, from cbm_glossary.tsv."""
    en_zh: dict[str, list[str]] = {}
    text = resources.files("kb.resources").joinpath("cbm_glossary.tsv").read_text(encoding="utf-8")
    for line in text.splitlines()[1:]:
        en, _, zh = line.partition("\t")
        en, zh = " ".join(_WORD.findall(en.lower())), zh.strip()
        if en and zh:
            en_zh.setdefault(en, []).append(zh)
    return en_zh


@lru_cache(maxsize=1)
def zh_index() -> tuple[dict[str, list[str]], dict[str, str]]:
    """Chinese glossary terms (2+ characters) by their first two characters, longest first, and each
    term's first English phrase."""
    zh_en: dict[str, str] = {}
    for en, zhs in glossary().items():
        for zh in zhs:
            if len(zh) >= 2:
                zh_en.setdefault(zh.lower(), en)
    starts: dict[str, list[str]] = {}
    for zh in sorted(zh_en, key=len, reverse=True):
        starts.setdefault(zh[:2], []).append(zh)
    return starts, zh_en


def chinese_terms_to_english(query: str) -> list[str]:
    """English phrases for the glossary's Chinese terms in a query, longest terms first, no overlaps."""
    return _zh_to_en(query)[0]


def _zh_to_en(query: str) -> tuple[list[str], str]:
    """Glossary phrases for a Chinese query (longest term at each position, left to right), and the
    query with the matched terms blanked out.

    A scan over the text with the terms indexed by their first two characters: BM25 runs this over
    every passage it indexes, where trying each of 2,000 terms cost 0.37 ms per passage.
    """
    starts, zh_en = zh_index()
    text = query.lower()
    out: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(text):
        for zh in starts.get(text[i : i + 2], ()):
            if text.startswith(zh, i):
                if zh_en[zh] not in out:
                    out.append(zh_en[zh])
                kept.append("\x00")
                i += len(zh)
                break
        else:
            kept.append(text[i])
            i += 1
    return out, "".join(kept)


def _singulars(word: str) -> list[str]:
    """Candidate singular forms (pipelines -> pipeline, batteries -> battery, gases -> gas)."""
    out = []
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            out.append(word[: -len(suffix)] + repl)
    return out


def english_terms_to_chinese(query: str) -> list[str]:
    """Chinese terms for the longest glossary phrases found in an English query."""
    return _glossary_en_to_zh(query)[0]


def _glossary_en_to_zh(query: str) -> tuple[list[str], list[list[str]]]:
    en_zh = glossary()
    return _en_to_zh(_WORD.findall(query.lower()), lambda p: en_zh.get(p, []), _first_words())


Words = Callable[[str], list[str]]  # an English word or phrase -> Chinese words (kb.lang.cedict.lookup)


def _dictionary_en_to_zh(words: list[str], lookup: Words) -> list[str]:
    return _en_to_zh([w for w in words if w not in STOP], lookup)[0]  # "does" is not a doe


def _en_to_zh(words: list[str], lookup: Callable[[str], list[str]],
              firsts: frozenset[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Chinese terms for the longest phrases ``lookup`` knows in a run of English words, and the runs of
    words no phrase covered. ``firsts`` (the first words of every phrase) lets a word no phrase starts
    with be skipped at once: BM25 runs this over every English passage it indexes."""
    out: list[str] = []
    rest: list[list[str]] = [[]]
    i = 0
    while i < len(words):
        if firsts is not None and words[i] not in firsts and not any(lookup(w) for w in _singulars(words[i])):
            rest[-1].append(words[i])
            i += 1
            continue
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            phrase = words[i : i + n]
            found = next((t for cand in [" ".join(phrase)] + [" ".join([*phrase[:-1], w]) for w in
                                                              _singulars(phrase[-1])] if (t := lookup(cand))), None)
            if found:
                out.extend(t for t in found if t not in out)
                i += n
                rest.append([])
                break
        else:
            rest[-1].append(words[i])
            i += 1
    return out, [r for r in rest if r]


@lru_cache(maxsize=1)
def _first_words() -> frozenset[str]:
    """The first word of every glossary phrase (a one-word phrase is its own first word)."""
    return frozenset(en.split()[0] for en in glossary())


def is_latin(query: str) -> bool:
    """True for queries written mostly in Latin script (English), False for Chinese ones."""
    cjk = len(_CJK.findall(query))
    latin = len(re.findall(r"[A-Za-z]", query))
    return latin > 0 and cjk < 0.3 * (cjk + latin)


def translate(query: str, dictionary: Words | None = None) -> str:
    """The glossary terms of a query in the other language, as a short keyword query ("" if none).

    On eval/cbm, dense search with this translation scored the other-language passages far
    better than the original query did (zh->en Recall@5 0.76 vs 0.0 on English passages alone).
    ``dictionary`` adds, for an English query, general-dictionary words for what the glossary does not
    cover (the same for Chinese queries lowered eval/cbm Recall@5: its English words were mostly noise).
    """
    return translations(query, dictionary)[1]


def translations(query: str, dictionary: Words | None = None) -> tuple[str, str]:
    """``translate`` without and with ``dictionary``, the glossary scanned once for both."""
    if not is_latin(query):
        zh = ", ".join(_zh_to_en(query)[0])
        return zh, zh
    terms, rest = _glossary_en_to_zh(query)
    more = list(terms)
    if dictionary is not None:
        for run in rest:
            more.extend(t for t in _dictionary_en_to_zh(run, dictionary) if t not in more)
    return "，".join(terms), "，".join(more)
