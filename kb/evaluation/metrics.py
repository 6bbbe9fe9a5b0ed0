"""Retrieval evaluation: metrics (pure), relevance matching, and runners for each method."""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.models import Document, SearchHit, Section
from kb.search.methods import METHODS as SEARCH_METHODS
from kb.settings import Settings

BASELINE = "llamaindex_baseline"  # llama-index's default pipeline with the same model, for comparison
METHODS = (*SEARCH_METHODS, BASELINE)
METRICS = ("recall@1", "recall@5", "recall@10", "recall@20", "recall@50", "mrr@10", "ndcg@10")
# recall@20/@50 show whether a miss is a ranking problem (found, ordered too low) or a recall one
DEPTH = 50
HITS = 100  # chunks asked of each method: several chunks of one section count as one unit


@dataclass
class Query:
    id: str
    text: str
    relevant: list[str]
    type: str = "all"
    answer: str | None = None
    filters: dict[str, str] = field(default_factory=dict)


@dataclass
class Ranked:
    """Per query, which ranks (1-based) held a newly found relevant item."""

    n_relevant: int
    hits_at: list[int] = field(default_factory=list)


def recall_at(r: Ranked, k: int) -> float:
    """|relevant in top k| / |relevant|."""
    return sum(1 for x in r.hits_at if x <= k) / r.n_relevant


def mrr_at(r: Ranked, k: int) -> float:
    """1 / rank of the first relevant item within k, else 0."""
    first = min((x for x in r.hits_at if x <= k), default=None)
    return 0.0 if first is None else 1.0 / first


def ndcg_at(r: Ranked, k: int) -> float:
    """Binary nDCG: sum 1/log2(rank+1) over relevant ranks, over the ideal ordering's sum."""
    dcg = sum(1.0 / math.log2(x + 1) for x in r.hits_at if x <= k)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(r.n_relevant, k) + 1))
    return dcg / ideal


def score(ranked: list[Ranked]) -> dict[str, float]:
    """Mean of each metric over queries."""
    fns: dict[str, Callable[[Ranked], float]] = {
        "recall@1": lambda r: recall_at(r, 1), "recall@5": lambda r: recall_at(r, 5),
        "recall@10": lambda r: recall_at(r, 10), "recall@20": lambda r: recall_at(r, 20),
        "recall@50": lambda r: recall_at(r, 50), "mrr@10": lambda r: mrr_at(r, 10),
        "ndcg@10": lambda r: ndcg_at(r, 10),
    }
    n = max(len(ranked), 1)
    return {m: round(sum(f(r) for r in ranked) / n, 4) for m, f in fns.items()}


def _squash(s: str) -> str:
    return "".join(s.split())


def matches(relevant_id: str, doc_id: str, section: str) -> bool:
    """A hit satisfies ``doc`` or ``doc#heading`` (the heading text occurring in its heading path)."""
    doc, _, heading = relevant_id.partition("#")
    return doc == doc_id and (not heading or _squash(heading) in _squash(section))


def rank_hits(hits: Iterable[tuple[str, str]], relevant: list[str]) -> Ranked:
    """Relevant ranks in a list of (doc_id, section) hits, each (doc, section) unit counted once."""
    seen: list[tuple[str, str]] = []
    found: set[str] = set()
    out = Ranked(len(relevant))
    for unit in hits:
        if unit in seen:
            continue
        seen.append(unit)
        new = [r for r in relevant if r not in found and matches(r, *unit)]
        if new:
            found.add(new[0])
            out.hits_at.append(len(seen))
        if len(seen) >= DEPTH:
            break
    return out


def load_queries(path: Path, limit: int | None = None) -> list[Query]:
    qs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            o = json.loads(line)
            answers = o.get("answers") or ([o["answer"]] if o.get("answer") else [])
            qs.append(Query(str(o["id"]), o["text"], list(o["relevant_ids"]), o.get("type", "all"),
                            answers[0] if answers else None, dict(o.get("filters") or {})))
    return qs[:limit] if limit else qs


def passage_documents(corpus: Path) -> list[Document]:
    """A ``corpus.jsonl`` of {id, text[, title]} as one document per passage."""
    docs = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            o = json.loads(line)
            docs.append(Document(str(o["id"]), "paper", o.get("title") or "", corpus.name,
                                 [Section(o["text"])], {"year": o.get("year")}))
    return docs


def home_for(base: Path, dataset: Path, settings: Settings) -> Path:
    """A cached index directory per dataset content and the settings that shape the vectors."""
    h = hashlib.sha256()
    for f in sorted(dataset.rglob("*")) if dataset.is_dir() else [dataset]:
        if f.is_file() and f.name != "queries.jsonl" and f.suffix != ".md":
            h.update(f.name.encode())
            h.update(f.read_bytes())
    h.update(f"{settings.embed_model}|{settings.embed_backend}|{settings.chunk_size}|{settings.chunk_overlap}".encode())
    return base / f"{dataset.name}-{h.hexdigest()[:12]}"


Runner = Callable[[str, dict[str, str]], list[SearchHit]]


def evaluate(queries: list[Query], runners: dict[str, Runner],
             progress: Callable[[Iterable[Query]], Iterable[Query]] | None = None) -> dict[str, Any]:
    """Metrics per method, and per query type for each method."""
    per: dict[str, dict[str, list[Ranked]]] = {m: defaultdict(list) for m in runners}
    for q in progress(queries) if progress else queries:
        for name, run in runners.items():
            r = rank_hits(((h.doc_id, h.section) for h in run(q.text, q.filters)), q.relevant)
            per[name][q.type].append(r)
            per[name]["__all__"].append(r)
    methods = {m: score(per[m]["__all__"]) for m in runners}
    types = sorted({t for m in per.values() for t in m if t != "__all__"})
    by_type = {t: {m: {**score(per[m][t]), "queries": len(per[m][t])} for m in runners} for t in types}
    return {"queries": len(queries), "methods": methods, "by_type": by_type}
