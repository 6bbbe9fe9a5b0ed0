"""Chinese text primitives shared by the write and read paths: normalisation, sentences, tokens."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f\u2018-\u201d\u2026\u00b7"
)
_IDEO = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}])[ \t\u3000\u00a0]+|[ \t\u3000\u00a0]+(?=[{_CJK}])")
_MULTISPACE = re.compile(r"[ \t\u00a0]+")
_SENT_END = re.compile(r"(?<=[。！？；!?;])(?![”’」』）)\]])|(?<=[。！？；!?;][”’」』）)\]])")
_TOKEN_RUN = re.compile(rf"[{_IDEO}]+|[0-9a-z]+(?:[.][0-9]+)?")
_IDEO_CHAR = re.compile(rf"[{_IDEO}]")


def normalize(text: str) -> str:
    """Drop NULs and control characters, and the spaces PDF/Word exports put between CJK characters.

    ``60 万 Nm³/日`` becomes ``60万Nm³/日``; spaces between Latin words stay.
    """
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    text = _SPACE_NEAR_CJK.sub("", text)
    return _MULTISPACE.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split on Chinese and Western sentence ends (。！？；!?;) and on line breaks."""
    out: list[str] = []
    for line in text.split("\n"):
        out.extend(s for s in (p.strip() for p in _SENT_END.split(line)) if s)
    return out


# an English sentence ends at . ! ? (a closing quote or bracket may follow) before a space and a capital, a digit
# or an opening bracket; "e.g. The", "Fig. 3", "et al. (2019)" and initials are not ends. "Ltd." and "Inc." are:
# in our papers a company name ends its sentence far more often than it is followed by a capitalised word
_LATIN_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|al|Fig|Figs|Eq|Eqs|No|Nos|Ref|Refs|Tab|Vol|pp|Dr|Mr|Mrs|Ms|St|"
                     r"approx|ca|Sect|Ch)\.|\b[A-Z]\.)$")


def latin_sentences(text: str) -> list[str]:
    """English sentences of a passage (text without a Latin sentence end comes back whole)."""
    out: list[str] = []
    pos = 0
    for m in _LATIN_END.finditer(text):
        if _ABBREV.search(text[pos : m.start()].rstrip("\"')]")):
            continue
        out.append(text[pos : m.start()].strip())
        pos = m.end()
    out.append(text[pos:].strip())
    return [s for s in out if s]


def sentences(text: str) -> list[str]:
    """split_sentences, with English sentences also split at . ! ? (for answers: one claim per sentence)."""
    return [t for s in split_sentences(text) for t in (latin_sentences(s) if _LATIN_END.search(s) else [s])]


def fold(text: str) -> str:
    """Fold width and case for matching (NFKC: full-width digits/letters, ³ -> 3)."""
    # Chinese text's full-width punctuation, mapped first as NFKC maps it, leaves most passages already
    # normalized: the check is much cheaper than normalizing (the BM25 build folds every passage)
    text = text.translate(_NFKC_PUNCT)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


_NFKC_PUNCT = str.maketrans({c: unicodedata.normalize("NFKC", c) for c in "，：；！？（）\u3000"})


def char_tokens(text: str) -> list[str]:
    """CJK character unigrams + bigrams, Latin/digit words whole.

    Our own because no library tokenizer emits overlapping CJK n-grams next to whole Latin words.
    """
    toks: list[str] = []
    for run in _TOKEN_RUN.findall(fold(text)):
        if _IDEO_CHAR.match(run):
            toks.extend(run)
            toks.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            toks.append(run)
    return toks


@lru_cache(maxsize=1)
def jieba_instance():  # type: ignore[no-untyped-def]
    """jieba with the CBM user dictionary loaded (once per process)."""
    import jieba

    jieba.setLogLevel(60)
    dict_path = resources.files("kb.resources").joinpath("cbm_userdict.txt")
    with resources.as_file(dict_path) as p:
        jieba.load_userdict(str(p))
    return jieba


def jieba_tokens(text: str) -> list[str]:
    """jieba search-mode words (with the CBM user dictionary), punctuation dropped."""
    words = jieba_instance().lcut_for_search(fold(text))
    return [w for w in words if _TOKEN_RUN.fullmatch(w) or _IDEO_CHAR.search(w)]


def tokenize(text: str, mode: str) -> list[str]:
    """Lexical tokens for BM25 in the given mode (char | jieba | both)."""
    if mode == "char":
        return char_tokens(text)
    if mode == "jieba":
        return jieba_tokens(text)
    if mode == "both":
        return char_tokens(text) + [w for w in jieba_tokens(text) if len(w) > 2]
    raise ValueError(f"unknown lexical mode {mode!r}; valid: char, jieba, both")
