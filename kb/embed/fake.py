"""A deterministic embedder for tests that do not judge meaning: hashed character n-grams, no model.

``KB_EMBED_MODEL=hash`` selects it. Texts sharing words or CJK bigrams get similar vectors, so search
tests still rank the obvious passage first, but nothing is loaded and a batch costs microseconds.
Our own because the test tier must run without a model; it is not a retrieval model.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

import numpy as np

FAKE = "hash"
DIM = 256
_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[0-9a-z]+")


def features(text: str) -> list[str]:
    """CJK unigrams and bigrams and Latin words of NFKC-folded, lower-cased text."""
    out: list[str] = []
    for run in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if run[0].isascii():
            out.append(run)
        else:
            out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


@lru_cache(maxsize=1 << 18)
def _slot(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    n = int.from_bytes(digest, "little")
    return n % DIM, (1.0 if (n >> 32) & 1 else -1.0)


class HashEmbedder:
    """Feature hashing into ``DIM`` signed buckets, L2-normalised; queries and passages alike."""

    name = f"{FAKE}:char-ngram-{DIM}"
    dim = DIM

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            slots = [_slot(f) for f in features(text)]
            if slots:
                at, sign = zip(*slots, strict=True)
                np.add.at(out[row], np.asarray(at), np.asarray(sign, dtype=np.float32))
        out[~out.any(axis=1), 0] = 1.0  # a text without features still gets a unit vector (cosine needs one)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)
