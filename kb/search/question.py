"""Question understanding for answers: the question's language, its other wordings, what kind of answer it wants.

Pure functions over the question text; kb/search/ask.py searches with every wording and scores sentences with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from kb.lang.spelling import respelled
from kb.lang.text import fold

MAX_WORDINGS = 3  # the question and at most two rewrites: each is one more search and one more query vector
_LATIN = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
# a question after a figure: how much, what share, what target
_QUANTITY = re.compile(r"多少|(?<!哪)几[个项家所座%]|百分之|比重|比例|占比|强度|比率|目标|指标|达到|率[是为达]?[？?]?$|"
                       r"\bhow (?:many|much|high|large)\b|\bwhat (?:percentage|share|proportion|rate|target|level)\b|"
                       r"\bpercent|\brate\b|\btarget\b", re.I)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
REFERENCE_MARK = re.compile(r"[\[［](\d+(?:\s*[,，\-–]\s*\d+)*)[\]］]")  # a source's "[4]", "[2, 3]", "［5-7］"
NUMBER = re.compile(r"\d+(?:\.\d+)?\s*(?:%|％)?|[一二三四五六七八九十百千万亿]+[个项家所座]")


@dataclass(frozen=True)
class Question:
    text: str
    language: str  # "en" or "zh"
    wordings: tuple[str, ...]  # the question first, then its rewrites in official wording or the other spelling
    wants_number: bool
    years: frozenset[str]


def language(text: str) -> str:
    """"en" when English words outnumber Chinese ones (two characters to a word), else "zh"."""
    return "en" if len(_LATIN_WORD.findall(text)) > len(_HAN.findall(text)) / 2 else "zh"


@lru_cache(maxsize=1)
def synonym_groups() -> tuple[tuple[str, ...], ...]:
    """kb/resources/policy_synonyms.tsv: per concept, the official wording first, then everyday ones."""
    text = resources.files("kb.resources").joinpath("policy_synonyms.tsv").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return tuple(tuple(p.strip() for p in row if p.strip()) for row in rows)


def _phrase_at(folded: str, phrase: str) -> int:
    """Where a phrase occurs in folded text (Latin phrases as whole words), or -1."""
    p = fold(phrase)
    if not _LATIN.search(p):
        return folded.find(p)
    m = re.search(rf"(?<![a-z]){re.escape(p)}(?![a-z])", folded)
    return m.start() if m else -1


def official_wordings(text: str) -> list[str]:
    """The question with a phrase of a synonym group replaced by the group's first other phrase in the same
    language (the official wording comes first), and an English phrase also by the Chinese official term;
    longest phrases first."""
    folded = fold(text)
    out: list[str] = []
    phrases = sorted(((p, g) for g in synonym_groups() for p in g), key=lambda pg: -len(pg[0]))
    used: set[tuple[str, ...]] = set()
    taken: list[tuple[int, int]] = []
    for phrase, group in phrases:
        at = _phrase_at(folded, phrase)
        if at < 0 or group in used or any(a < at + len(phrase) and at < b for a, b in taken):
            continue
        used.add(group)
        taken.append((at, at + len(phrase)))
        lang = language(phrase)  # an English question gets English wording, a Chinese one Chinese ...
        other = next((p for p in group if language(p) == lang and fold(p) != fold(phrase)), None)
        if other:
            out.append(folded[:at] + other + folded[at + len(phrase):])
        if lang == "en" and language(group[0]) == "zh":  # ... and the Chinese official term, which the plan uses
            out.append(folded[:at] + group[0] + folded[at + len(phrase):])
    return out


def understand(text: str) -> Question:
    """Language, wordings (official terms, the other English spelling), figure wanted, years named."""
    wordings = [text]
    for w in [respelled(text), *official_wordings(text)]:
        if w and w not in wordings:
            wordings.append(w)
    return Question(text=text, language=language(text), wordings=tuple(wordings[:MAX_WORDINGS]),
                    wants_number=bool(_QUANTITY.search(text)), years=frozenset(_YEAR.findall(text)))


def has_number(sentence: str) -> bool:
    """A figure other than a year or a reference mark: 1.88%, 95%, 13 家, 二十个."""
    sentence = REFERENCE_MARK.sub("", sentence)
    return any(not _YEAR.fullmatch(m.strip()) for m in NUMBER.findall(sentence))


def figures(sentence: str) -> frozenset[str]:
    """The figures of a sentence, spaces removed (to tell whether two sentences state the same fact)."""
    sentence = REFERENCE_MARK.sub("", sentence)
    return frozenset(re.sub(r"\s+", "", m).replace("％", "%") for m in NUMBER.findall(sentence))
