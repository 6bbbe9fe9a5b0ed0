"""Cross-language query expansion with the bundled bilingual CBM glossary.

Our own because the small multilingual model ranks same-language passages far above the
right passage in the other language; adding the glossary's translations of the query's
terms lets BM25 and the dense side meet the text in its own language.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")
_MAX_PHRASE = 5


@lru_cache(maxsize=1)
def glossary() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(English phrase -> Chinese terms, Chinese term -> English phrases) from cbm_glossary.tsv."""
    en_zh: dict[str, list[str]] = {}
    zh_en: dict[str, list[str]] = {}
    text = resources.files("kb.resources").joinpath("cbm_glossary.tsv").read_text(encoding="utf-8")
    for line in text.splitlines()[1:]:
        en, _, zh = line.partition("\t")
        en, zh = " ".join(_WORD.findall(en.lower())), zh.strip()
        if en and zh:
            en_zh.setdefault(en, []).append(zh)
            zh_en.setdefault(zh, []).append(en)
    return en_zh, zh_en


def _singular(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + repl
    return word


def english_terms_to_chinese(query: str) -> list[str]:
    """Chinese terms for the longest glossary phrases found in an English query."""
    en_zh, _ = glossary()
    words = _WORD.findall(query.lower())
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            phrase = words[i : i + n]
            for cand in (" ".join(phrase), " ".join([*phrase[:-1], _singular(phrase[-1])])):
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


def chinese_terms_to_english(query: str) -> list[str]:
    """English phrases for glossary terms (2+ characters) that occur in a Chinese query."""
    _, zh_en = glossary()
    hits = sorted((t for t in zh_en if len(t) >= 2 and t in query), key=len, reverse=True)
    out: list[str] = []
    for t in hits:
        if any(t in longer for longer in hits if longer != t and longer in query):
            continue  # 多分支水平井 wins over 水平井
        out.extend(e for e in zh_en[t] if e not in out)
    return out


def expand(query: str) -> str:
    """The query followed by translations of its glossary terms (unchanged if none)."""
    terms = english_terms_to_chinese(query) + chinese_terms_to_english(query)
    return f"{query} {' '.join(terms)}" if terms else query
