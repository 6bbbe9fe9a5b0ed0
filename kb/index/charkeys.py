"""The BM25 build's tokenizer for many passages at once: ``char`` tokens as int64 keys, in numpy.

Our own because tokenizing a million passages one Python string at a time was the BM25 build's
largest cost (char uni+bigrams and one dict lookup per token: about 220 s of a 1M-chunk build).
Here a whole batch is one code-point array: CJK unigrams and bigrams become integer keys by
arithmetic, and only Latin words and glossary matches go through Python. The tokens equal
``kb.lang.text.tokenize(text, "char")`` plus, with ``translated``, those of ``expand.translate(text)``
(tests/test_lexical.py checks both on real text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from kb.lang.text import fold, tokenize

_IDEO = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))  # kb.lang.text's _IDEO
_LATIN = re.compile(r"[0-9a-z]+(?:[.][0-9]+)?")  # kb.lang.text's Latin run; disjoint from the CJK one
_BITS = 21  # a code point fits in 21 bits
BIGRAM, WORD, EMPTY = 1 << 42, 2 << 42, 3 << 42  # key spaces above any unigram (a code point)


class Keys:
    """Key <-> token string: CJK tokens are arithmetic, Latin words are numbered as first seen."""

    def __init__(self) -> None:
        self.words: dict[str, int] = {}
        self.word_list: list[str] = []

    def word(self, w: str) -> int:
        k = self.words.get(w)
        if k is None:
            k = self.words[w] = WORD | len(self.word_list)
            self.word_list.append(w)
        return k

    def token(self, key: int) -> str:
        """The token string a key stands for."""
        if key < BIGRAM:
            return chr(key)
        if key < WORD:
            return chr((key >> _BITS) & ((1 << _BITS) - 1)) + chr(key & ((1 << _BITS) - 1))
        if key < EMPTY:
            return self.word_list[key - WORD]
        return ""

    def of_tokens(self, toks: Sequence[str]) -> list[int]:
        """Keys of already-split tokens (the glossary terms a translation adds)."""
        out = []
        for t in toks:
            if len(t) == 1 and _is_ideo(ord(t)):
                out.append(ord(t))
            elif len(t) == 2 and _is_ideo(ord(t[0])) and _is_ideo(ord(t[1])):
                out.append(BIGRAM | (ord(t[0]) << _BITS) | ord(t[1]))
            else:
                out.append(self.word(t))
        return out


def _is_ideo(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _IDEO)


def _codepoints(texts: Sequence[str], how: Callable[[str], str] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The texts (each through ``how``) joined as one code-point array, each text's start, and the
    joined string. NUL separates the texts (a NUL inside one becomes a space: neither makes a token)."""
    joined = "\x00".join((how(t) if how else t).replace("\x00", " ") for t in texts) + "\x00"
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    ends = np.flatnonzero(cp == 0)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    return cp, starts, joined


def _in_ranges(cp: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(len(cp), dtype=bool)
    for lo, hi in ranges:
        out |= (cp >= lo) & (cp <= hi)
    return out


def batch_keys(texts: Sequence[str], keys: Keys, translated: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All token keys of ``texts`` with the text each belongs to (in no particular order), and each
    text's token count.

    A text without tokens gets the one empty token, as the scalar path's ``tokenize(...) or [""]``.
    """
    cp, starts, joined = _codepoints(texts, fold)
    row_of = _row_of(starts, len(cp))
    ideo = _in_ranges(cp, _IDEO)
    uni = np.flatnonzero(ideo)
    pair = np.flatnonzero(ideo[:-1] & ideo[1:])  # a bigram never crosses texts: NUL separates them
    words = [(m.start(), keys.word(m.group())) for m in _LATIN.finditer(joined)]
    pos = [uni, pair, np.fromiter((p for p, _ in words), dtype=np.int64, count=len(words))]
    key = [cp[uni], BIGRAM | (cp[pair] << _BITS) | cp[pair + 1],
           np.fromiter((k for _, k in words), dtype=np.int64, count=len(words))]
    row = [row_of[p] for p in pos]
    if translated:
        extra_row, extra_key = _translation_keys(texts, keys)
        row.append(extra_row)
        key.append(extra_key)
    rows, flat = np.concatenate(row), np.concatenate(key)
    lens = np.bincount(rows, minlength=len(texts))
    empty = np.flatnonzero(lens == 0)
    if len(empty):
        rows, flat = np.concatenate([rows, empty]), np.concatenate([flat, np.full(len(empty), EMPTY)])
        lens[empty] = 1
    return rows, flat, lens


def _row_of(starts: np.ndarray, n: int) -> np.ndarray:
    """The text each position of the joined code-point array belongs to."""
    return np.repeat(np.arange(len(starts), dtype=np.int64), np.diff(np.append(starts, n)))


def latin_rows(texts: Sequence[str]) -> np.ndarray:
    """``expand.is_latin`` of each text, from per-text counts of CJK and Latin letters."""
    cp, starts, _ = _codepoints(texts)
    cjk = np.add.reduceat(((cp >= 0x3400) & (cp <= 0x9FFF)).astype(np.int64), starts)
    latin = np.add.reduceat((((cp >= 0x41) & (cp <= 0x5A)) | ((cp >= 0x61) & (cp <= 0x7A))).astype(np.int64), starts)
    return (latin > 0) & (cjk < 0.3 * (cjk + latin))


def _translation_keys(texts: Sequence[str], keys: Keys) -> tuple[np.ndarray, np.ndarray]:
    """Keys of each text's glossary translation (``expand.translate``), with the text each belongs to.

    Chinese texts: only positions whose two characters start some glossary term are looked at;
    English texts (few) go through ``translate`` itself.
    """
    from kb.lang.glossary import translate, zh_index

    starts_of, zh_en = zh_index()
    first = _start_pairs()
    cp, starts, joined = _codepoints(texts, str.lower)
    maybe = np.flatnonzero(_first_chars()[np.minimum(cp[:-1], 0x10FFFF)])  # cheap filter before the pairs
    pair = (cp[maybe] << _BITS) | cp[maybe + 1]
    at = np.minimum(np.searchsorted(first, pair), len(first) - 1)
    cand = maybe[first[at] == pair]
    cand_row = _row_of(starts, len(cp))[cand]
    latin = latin_rows(texts)
    out_rows: list[int] = []
    out_keys: list[int] = []
    bounds = np.searchsorted(cand_row, np.arange(len(texts) + 1))
    for r in range(len(texts)):
        if latin[r]:
            phrase = translate(texts[r])
        else:
            phrase = ", ".join(_scan(joined, cand[bounds[r] : bounds[r + 1]].tolist(), starts_of, zh_en))
        if phrase:
            ks = keys.of_tokens(tokenize(phrase, "char"))
            out_keys.extend(ks)
            out_rows.extend([r] * len(ks))
    return np.asarray(out_rows, dtype=np.int64), np.asarray(out_keys, dtype=np.int64)


def _scan(joined: str, positions: list[int], starts_of: dict[str, list[str]], zh_en: dict[str, str]) -> list[str]:
    """``expand._zh_to_en``'s left-to-right longest match, visiting only the candidate positions."""
    out: list[str] = []
    free = 0
    for p in positions:
        if p < free:
            continue
        for zh in starts_of.get(joined[p : p + 2], ()):
            if joined.startswith(zh, p):
                if zh_en[zh] not in out:
                    out.append(zh_en[zh])
                free = p + len(zh)
                break
    return out


@lru_cache(maxsize=1)
def _first_chars() -> np.ndarray:
    """Per code point: does some glossary term start with it."""
    table = np.zeros(0x110000, dtype=bool)
    table[(_start_pairs() >> _BITS)] = True
    return table


@lru_cache(maxsize=1)
def _start_pairs() -> np.ndarray:
    """The pair keys of every glossary term's first two characters."""
    from kb.lang.glossary import zh_index

    return np.array(sorted((ord(s[0]) << _BITS) | ord(s[1]) for s in zh_index()[0]), dtype=np.int64)
