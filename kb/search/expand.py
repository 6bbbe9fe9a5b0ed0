"""Cross-language query expansion with the bundled bilingual CBM glossary.

Our own because the small multilingual model ranks same-language passages far above the
right passage in the other language: every query gets a glossary translation (``translate``)
that the dense and BM25 sides run on their own against passages in the other language.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

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
def _zh_index() -> tuple[list[str], dict[str, str]]:
    """Chinese glossary terms (2+ characters, longest first) -> the first English phrase given for each."""
    zh_en: dict[str, str] = {}
    for en, zhs in glossary().items():
        for zh in zhs:
            if len(zh) >= 2:
                zh_en.setdefault(zh.lower(), en)
    return sorted(zh_en, key=len, reverse=True), zh_en


def chinese_terms_to_english(query: str) -> list[str]:
    """English phrases for the glossary's Chinese terms in a query, longest terms first, no overlaps."""
    terms, zh_en = _zh_index()
    text = query.lower()
    out: list[str] = []
    for zh in terms:
        if zh in text:
            if zh_en[zh] not in out:
                out.append(zh_en[zh])
            text = text.replace(zh, "\x00")
    return out


def _singulars(word: str) -> list[str]:
    """Candidate singular forms (pipelines -> pipeline, batteries -> battery, gases -> gas)."""
    out = []
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            out.append(word[: -len(suffix)] + repl)
    return out


def english_terms_to_chinese(query: str) -> list[str]:
    """Chinese terms for the longest glossary phrases found in an English query."""
    en_zh = glossary()
    words = _WORD.findall(query.lower())
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            phrase = words[i : i + n]
            for cand in [" ".join(phrase)] + [" ".join([*phrase[:-1], w]) for w in _singulars(phrase[-1])]:
                if cand in en_zh:
                    out.extend(t for t in en_zh[cand] if t not in out)
                    i += n
                    break
            else:
                continue
            break
        else:
            i += 1
    return out


def is_latin(query: str) -> bool:
    """True for queries written mostly in Latin script (English), False for Chinese ones."""
    cjk = len(_CJK.findall(query))
    latin = len(re.findall(r"[A-Za-z]", query))
    return latin > 0 and cjk < 0.3 * (cjk + latin)


def translate(query: str) -> str:
    """The glossary terms of a query in the other language, as a short keyword query ("" if none).

    On eval/cbm, dense search with this translation scored the other-language passages far
    better than the original query did (zh->en Recall@5 0.76 vs 0.0 on English passages alone).
    """
    if is_latin(query):
        return "，".join(english_terms_to_chinese(query))
    return ", ".join(chinese_terms_to_english(query))
