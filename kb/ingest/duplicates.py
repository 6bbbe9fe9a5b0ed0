"""Near-duplicate documents (the same standard as a PDF and as a TXT): MinHash over character shingles.

datasketch's MinHash estimates the Jaccard overlap of two documents' sets of 5-character shingles from
128 hashes each; a document whose estimate against an earlier one reaches KB_NEAR_DUPLICATE is linked
to it in the manifest ("possible duplicate of ..."), and search shows one hit per passage.
"""

from __future__ import annotations

import numpy as np

from kb.index.manifest import Manifest
from kb.lang.text import fold
from kb.models import FILE_KINDS, Document

SHINGLE = 5  # characters: long enough that two unrelated Chinese texts share few, short enough for OCR noise
NUM_PERM = 128
MIN_CHARS = 200  # shorter documents (a table row, a title page) say too little to call duplicates


def doc_text(doc: Document) -> str:
    """A document's text for comparison: folded, without whitespace or punctuation differences."""
    return "".join(ch for ch in fold("".join(s.text for s in doc.sections)) if ch.isalnum())


def signature(text: str) -> np.ndarray | None:
    """The MinHash signature of a text's character shingles, or None for a text too short to compare."""
    from datasketch import MinHash

    if len(text) < MIN_CHARS:
        return None
    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch([text[i : i + SHINGLE].encode("utf-8") for i in range(len(text) - SHINGLE + 1)])
    return np.asarray(m.hashvalues, dtype=np.uint64)


def best_match(sig: np.ndarray, known: dict[str, np.ndarray]) -> tuple[str, float] | None:
    """The known document whose signature agrees most with ``sig`` (agreement estimates Jaccard)."""
    if not known:
        return None
    ids = list(known)
    sims = (np.stack([known[i] for i in ids]) == sig).mean(axis=1)
    best = int(np.argmax(sims))
    return ids[best], float(sims[best])


class DuplicateFinder:
    """Links each new file document to the most similar earlier one, inside the caller's transaction."""

    def __init__(self, manifest: Manifest, threshold: float) -> None:
        self.manifest, self.threshold = manifest, threshold
        self.known: dict[str, np.ndarray] | None = None  # loaded on first use

    def add(self, doc: Document) -> None:
        if self.threshold <= 0 or doc.kind not in FILE_KINDS:
            return
        sig = signature(doc_text(doc))
        if sig is None:
            return
        if self.known is None:
            self.known = {d: np.frombuffer(b, dtype=np.uint64) for d, b in self.manifest.minhashes()}
        self.known.pop(doc.doc_id, None)
        match = best_match(sig, self.known)
        if match is not None and match[1] >= self.threshold:
            self.manifest.link_duplicate(doc.doc_id, match[0], round(match[1], 3))
        self.manifest.put_minhash(doc.doc_id, sig.tobytes())
        self.known[doc.doc_id] = sig
