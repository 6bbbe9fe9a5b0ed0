"""Which shared words are domain terms worth showing an official as "共同技术术语" (display only).

A term of our CBM glossary or user dictionary is; otherwise a word of jieba's dictionary tagged as a noun
(n, nz, vn) that is not everyday Chinese (dictionary frequency under NOUN_FREQ). Verbs and adverbs (便于, 频次),
numerals (多口), common nouns (常规, 问题) and fragments jieba's HMM glues together (孔卡) are not.
Our own because no library tags Chinese CBM vocabulary; the measured complaint was filler shown as terms.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from kb.lang.glossary import zh_index
from kb.lang.text import jieba_instance

NOUN_TAGS = frozenset({"n", "nz", "vn"})
NOUN_FREQ = 1000  # jieba dictionary frequency at which a noun is everyday Chinese (常规 1198, 地层 1094 is glossary)


@lru_cache(maxsize=1)
def _lexicon() -> tuple[frozenset[str], dict[str, str], dict[str, int]]:
    """(our CBM terms, jieba's word → part-of-speech tag, jieba's word → frequency)."""
    jieba = jieba_instance()
    lines = resources.files("kb.resources").joinpath("cbm_userdict.txt").read_text(encoding="utf-8").splitlines()
    ours = frozenset(w.split()[0] for w in lines if w.strip()) | frozenset(zh_index()[1])
    return ours, _word_tags(jieba.dt), jieba.dt.FREQ


def _word_tags(tokenizer) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """jieba's dictionary word → tag, the table jieba.posseg builds: its dict.txt is "word freq tag" per line.
    Read with one split: posseg decodes it line by line, 1.2 s per tokenizer (twice with its import), which made
    the first match of a process take 4 s."""
    with tokenizer.get_dict_file() as f:
        fields = f.read().decode("utf-8").split()
    return dict(zip(fields[0::3], fields[2::3], strict=True))


def domain_term(word: str) -> bool:
    """A CBM glossary/dictionary term, or an uncommon noun of jieba's dictionary."""
    ours, tags, freq = _lexicon()
    if word.lower() in ours:
        return True
    return tags.get(word) in NOUN_TAGS and (freq.get(word) or 0) < NOUN_FREQ
