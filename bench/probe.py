"""In-process measurements: embedding speed, Searcher latency per method, llama-index's retriever, a profile."""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from kb.embed import Embedder
from kb.settings import Settings


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean of a list of milliseconds (nearest-rank on the sorted list)."""
    if not ms:
        return {"n": 0}
    a = np.sort(np.asarray(ms))
    at = lambda q: float(a[min(len(a) - 1, int(np.ceil(q * len(a))) - 1)])  # noqa: E731
    return {"n": len(a), "p50": round(at(0.50), 2), "p95": round(at(0.95), 2), "p99": round(at(0.99), 2),
            "mean": round(float(a.mean()), 2)}


def timed(fn: Callable[[str], Any], items: list[str]) -> list[float]:
    """Milliseconds of ``fn(item)`` for each item."""
    out = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def embedding(emb: Embedder, passages: list[str], queries: list[str], batch: int) -> dict[str, Any]:
    """Passages/s in batches of ``batch`` (as the pipeline feeds a file) and per-query ms."""
    emb.queries(["预热"])  # the first call builds the session: not part of any query's cost
    t0 = time.perf_counter()
    for s in range(0, len(passages), batch):
        emb.passages(passages[s : s + batch])
    dt = time.perf_counter() - t0
    chars = round(float(np.mean([len(p) for p in passages])), 1)
    return {"model": emb.name, "passages": len(passages), "passage_chars_mean": chars,
            "passages_per_s": round(len(passages) / dt, 2),
            "query_ms": percentiles(timed(lambda q: emb.queries([q]), queries))}


def searcher_latency(settings: Settings, queries: list[str], methods: list[str]) -> dict[str, Any]:
    """Searcher.search latency per method, each method on its own distinct queries (no vector cache hits)."""
    from kb.search.hybrid import Searcher

    s = Searcher(settings)
    t0 = time.perf_counter()
    s.search("煤层气 排采", top_k=10)  # loads the model, BM25 (mmap) and Chroma's index
    out: dict[str, Any] = {"first_search_s": round(time.perf_counter() - t0, 2)}
    # round-robin, each method on its own queries: a burst of load on this shared machine hits all alike
    ms: dict[str, list[float]] = {m: [] for m in methods}
    for j, q in enumerate(queries[: len(queries) // len(methods) * len(methods)]):
        m = methods[j % len(methods)]
        ms[m] += timed(partial(_search, s, m), [q])
    out.update({m: percentiles(v) for m, v in ms.items()})
    s.close()
    return out


def _search(s: Any, method: str, q: str) -> Any:
    return s.search(q, top_k=10, method=method)


def llamaindex_latency(settings: Settings, queries: list[str]) -> dict[str, Any]:
    """llama-index's default query path (VectorStoreIndex retriever, top 10) over the same Chroma collection."""
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from kb.evaluation.runner import llama_embedding
    from kb.index.vectors import collection_for

    index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=collection_for(settings)),
                                               embed_model=llama_embedding(settings))
    retriever = index.as_retriever(similarity_top_k=10)
    retriever.retrieve("煤层气 排采")
    return percentiles(timed(retriever.retrieve, queries))


def profile(settings: Settings, queries: list[str], top: int = 80) -> dict[str, Any]:
    """cProfile of Searcher.search (hybrid) over ``queries``: the functions with the most cumulative time."""
    from kb.search.hybrid import Searcher

    s = Searcher(settings)
    s.search("煤层气 排采", top_k=10)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for q in queries:
        s.search(q, top_k=10)
    prof.disable()
    wall = time.perf_counter() - t0
    s.close()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    st = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_, ncalls, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{file.split('site-packages/')[-1].split('/work/main/')[-1]}:{line}({fn})",
                     "calls": ncalls, "cum_ms_per_query": round(ct * 1000 / len(queries), 2),
                     "self_ms_per_query": round(tt * 1000 / len(queries), 2)})
    rows.sort(key=lambda r: -r["cum_ms_per_query"])
    return {"queries": len(queries), "wall_ms_per_query": round(wall * 1000 / len(queries), 2),
            "top_cumulative": rows[:top], "text": buf.getvalue()}


def chroma_detail(settings: Settings, queries: list[str]) -> dict[str, Any]:
    """The dense side's Chroma call alone, three ways (ms, n_results = KB_CANDIDATES):

    what llama-index asks for (documents + metadatas + distances), distances only, and the default right
    after a query embedding, as in a search (the model's idle threads then compete with Chroma's).
    """
    from kb.embed import load_embedder
    from kb.index.vectors import collection_for

    col = collection_for(settings)
    emb = load_embedder(settings)
    third = len(queries) // 3
    vecs = [v.tolist() for v in emb.queries(queries[: 2 * third])]
    k = settings.candidates
    col.query(query_embeddings=[vecs[0]], n_results=k)

    def after_embedding(q: str) -> None:
        v = emb.queries([q])[0].tolist()
        t0 = time.perf_counter()
        col.query(query_embeddings=[v], n_results=k)
        out.append((time.perf_counter() - t0) * 1000)

    out: list[float] = []
    for q in queries[2 * third : 3 * third]:
        after_embedding(q)
    return {"default_include": percentiles(timed(lambda i: col.query(query_embeddings=[vecs[int(i)]], n_results=k),
                                                 [str(i) for i in range(third)])),
            "distances_only": percentiles(timed(lambda i: col.query(query_embeddings=[vecs[int(i)]], n_results=k,
                                                                    include=["distances"]),
                                                [str(i) for i in range(third, 2 * third)])),
            "after_query_embedding": percentiles(out)}
