"""Per-query candidate lists of each retriever, computed once per dataset and cached on disk.

Fusion, calibration and result-unit variants are then scored offline in seconds (eval/fusion_fit.py),
instead of re-running the model and both indexes for every variant.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.errors import BadQueryError
from kb.evaluation.metrics import Query, load_queries, matches
from kb.search.fuse import Ranked
from kb.search.hybrid import Searcher
from kb.settings import Settings

VERSION = 2  # bump when the retrievers change what they return
RETRIEVERS = ("dense", "bm25")


@dataclass
class Candidates:
    """One query's lists per retriever, with which candidate ids are relevant (unit-level), and the
    query-level signals the retrievers offer (Searcher.signals)."""

    query: Query
    lists: dict[str, Ranked]
    relevant: set[str]
    signals: dict[str, float] | None = None


@dataclass
class CandidateSet:
    dataset: str
    items: list[Candidates]
    chunks: dict[str, dict[str, Any]]  # chunk id -> doc_id, section, ord, chars


def _key(settings: Settings, queries: Path) -> str:
    shaping = settings.model_dump(include={"expand", "dictionary", "lexical", "lexical_translate", "candidates",
                                           "translated_dense_margin", "w_translated_bm25", "w_translated_bm25_zh"})
    h = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode() + queries.read_bytes())
    return f"v{VERSION}-{h.hexdigest()[:12]}"


def compute(searcher: Searcher, queries: list[Query], progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
            ) -> CandidateSet:
    """Each query prepared as the Searcher prepares it (translations, filters), then every retriever run."""
    items: list[Candidates] = []
    ids: set[str] = set()
    for q in progress(queries):
        try:
            prepared = searcher.prepare(q.text, searcher.settings.candidates, q.filters)
            lists = {name: searcher.retrievers[name].retrieve(prepared) for name in RETRIEVERS}
            signals = searcher.signals(prepared)
        except BadQueryError:
            lists, signals = {name: [] for name in RETRIEVERS}, {}
        items.append(Candidates(q, lists, set(), signals))
        ids.update(i for ranked in lists.values() for i, _ in ranked)
    rows = searcher.manifest.chunk_rows(sorted(ids))
    chunks = {i: {"doc_id": r["doc_id"], "section": r["section"], "ord": r["ord"], "chars": len(r["text"])}
              for i, r in rows.items()}
    for it in items:
        it.relevant = {i for ranked in it.lists.values() for i, _ in ranked
                       if i in chunks and any(matches(rel, chunks[i]["doc_id"], chunks[i]["section"])
                                              for rel in it.query.relevant)}
    return CandidateSet(str(searcher.settings.home), items, chunks)


def _dump(cs: CandidateSet, path: Path) -> None:
    data = {"dataset": cs.dataset, "chunks": cs.chunks,
            "items": [{"id": c.query.id, "text": c.query.text, "type": c.query.type, "relevant_ids": c.query.relevant,
                       "filters": c.query.filters, "lists": c.lists, "relevant": sorted(c.relevant),
                       "signals": c.signals} for c in cs.items]}
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    tmp.replace(path)


def _load(path: Path) -> CandidateSet:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    items = [Candidates(Query(o["id"], o["text"], o["relevant_ids"], o["type"], None, o["filters"]),
                        {n: [(i, float(s)) for i, s in ranked] for n, ranked in o["lists"].items()},
                        set(o["relevant"]), o.get("signals")) for o in data["items"]]
    return CandidateSet(data["dataset"], items, data["chunks"])


def _fill_signals(cs: CandidateSet, eval_settings: Settings) -> None:
    searcher = Searcher(eval_settings)
    try:
        for it in cs.items:
            try:
                it.signals = searcher.signals(searcher.prepare(it.query.text, searcher.settings.candidates,
                                                               it.query.filters))
            except BadQueryError:
                it.signals = {}
    finally:
        searcher.close()


def cache_path(eval_settings: Settings, queries_path: Path) -> Path:
    return eval_settings.home / f"candidates-{_key(eval_settings, queries_path)}.json.gz"


def cached(eval_settings: Settings, queries_path: Path, progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
           ) -> CandidateSet:
    """The candidate set of a dataset's queries over its (already built) eval index, from disk when cached."""
    path = cache_path(eval_settings, queries_path)
    if path.exists():
        cs = _load(path)
        if any(it.signals is None for it in cs.items):  # cached before signals existed: add them only
            _fill_signals(cs, eval_settings)
            _dump(cs, path)
        return cs
    searcher = Searcher(eval_settings)
    try:
        cs = compute(searcher, load_queries(queries_path), progress)
    finally:
        searcher.close()
    _dump(cs, path)
    return cs
