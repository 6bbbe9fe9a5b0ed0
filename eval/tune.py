"""Choose lexical tokenization and fusion by measurement (run: python -m eval.tune --dataset DIR).

Dense and BM25 candidate lists are computed once per query; fusion variants are then scored
offline, so a grid of weights costs no extra model calls.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from kb.evaluation.metrics import Query, load_queries, rank_hits, score
from kb.evaluation.runner import build_index
from kb.index import bm25_build
from kb.lang.glossary import translate
from kb.search.fuse import Ranked, fuse, minmax
from kb.search.hybrid import Searcher
from kb.search.retrievers import BM25Index, BM25Retriever, Languages
from kb.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]


def candidates(searcher: Searcher, lex: dict[str, BM25Retriever], q: Query, n: int) -> dict[str, Any]:
    """Candidate lists per retriever, without and with the glossary translation (suffix _x)."""
    bare = replace(searcher.prepare(q.text, n, q.filters), translated="", translated_lex="")
    t = translate(q.text)
    dense = searcher.retrievers["dense"]
    out = {"dense": dense.retrieve(bare), "dense_x": dense.retrieve(replace(bare, translated=t))}
    for m, r in lex.items():
        out[m] = r.retrieve(bare)
        out[m + "_x"] = r.retrieve(replace(bare, translated_lex=t))
    return out


def pair(dense: Ranked, bm25: Ranked, wd: float, method: str = "relative") -> list[str]:
    """Ids of the two lists fused with weights wd and 1 - wd."""
    return [f.id for f in fuse({"dense": dense, "bm25": bm25}, {"dense": wd, "bm25": 1 - wd}, method)]


def max_norm(dense: list[tuple[str, float]], bm25: list[tuple[str, float]], wd: float, wb: float) -> dict[str, float]:
    """Dense min-max, BM25 divided by its max (keeps BM25's natural zero)."""
    d = minmax(dense)
    top = max((s for _, s in bm25), default=1.0) or 1.0
    b = {i: s / top for i, s in bm25}
    return {i: wd * d.get(i, 0.0) + wb * b.get(i, 0.0) for i in d.keys() | b.keys()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", type=Path, default=ROOT / "eval" / "cbm")
    p.add_argument("--limit", type=int)
    p.add_argument("--n", type=int, default=None, help="candidates per retriever (default KB_CANDIDATES)")
    args = p.parse_args()
    settings = get_settings()
    es = build_index(args.dataset, ROOT / "corpus", settings, None)
    searcher = Searcher(es)
    rows = [dict(r) for r in searcher.manifest.iter_chunks()]
    for r in rows:
        r["source"], r["field"], r["year"] = Path(r["source"]).name, None, None
    unit = {r["chunk_id"]: (r["doc_id"], r["section"]) for r in rows}
    lex = {}
    w = es.w_translated_bm25  # one weight for both directions, as when these lists were first tuned
    for mode in ("char", "jieba", "both"):
        out = es.home / f"bm25-{mode}"
        bm25_build.build(rows, mode, out)
        index = BM25Index(out)
        lex[mode] = BM25Retriever(index, Languages(index, searcher.manifest), w, w)
    queries = load_queries(args.dataset / "queries.jsonl", args.limit)
    cands = [candidates(searcher, lex, q, args.n or settings.candidates) for q in queries]

    def evaluate(fn: Any, qtype: str | None = None) -> dict[str, float]:
        ranked = []
        for q, c in zip(queries, cands, strict=True):
            if qtype is None or q.type == qtype:
                ranked.append(rank_hits((unit[i] for i in fn(c)), q.relevant))
        return score(ranked)

    def ids(ranked: list[tuple[str, float]]) -> list[str]:
        return [i for i, _ in ranked]

    results: dict[str, Any] = {"dense": evaluate(lambda c: ids(c["dense"])), "dense_x": evaluate(lambda c: ids(c["dense_x"]))}
    for mode in lex:
        results[f"bm25_{mode}"] = evaluate(lambda c, m=mode: ids(c[m]))
        results[f"bm25_{mode}_x"] = evaluate(lambda c, m=mode: ids(c[m + "_x"]))
    for w in [x / 10 for x in range(3, 8)]:
        for d in ("dense", "dense_x"):
            results[f"relative_char_x_{d}_{w}"] = evaluate(
                lambda c, w=w, d=d: pair(c[d], c["char_x"], w, "relative"))
    for mode in lex:
        for w in [x / 10 for x in range(1, 10)]:
            results[f"relative_{mode}_{w}"] = evaluate(
                lambda c, m=mode, w=w: pair(c["dense"], c[m], w, "relative"))
            results[f"maxnorm_{mode}_{w}"] = evaluate(
                lambda c, m=mode, w=w: sorted((s := max_norm(c["dense"], c[m], w, 1 - w)), key=lambda i: -s[i]))
            results[f"rrf_{mode}_{w}"] = evaluate(
                lambda c, m=mode, w=w: pair(c["dense"], c[m], w, "rrf"))
    by_type: dict[str, dict[str, float]] = {}
    for name, fn in {
        "plain": lambda c: pair(c["dense"], c["char"], 0.5),
        "bm25_x": lambda c: pair(c["dense"], c["char_x"], 0.5),
        "both_x": lambda c: pair(c["dense_x"], c["char_x"], 0.5),
        **{f"bm25_x_w{w}": (lambda c, w=w: pair(c["dense"], c["char_x"], w))
           for w in (0.1, 0.2, 0.3, 0.4)},
    }.items():
        for t in sorted({q.type for q in queries}):
            by_type.setdefault(t, {})[name] = evaluate(fn, t)["ndcg@10"]
    best = sorted(results.items(), key=lambda kv: -kv[1]["ndcg@10"])
    print(json.dumps({"dataset": str(args.dataset), "queries": len(queries), "top": best[:15],
                      "singles": {k: v for k, v in results.items() if k.startswith(("dense", "bm25"))},
                      "expanded": {k: v for k, v in results.items() if "_x_" in k}, "by_type_ndcg": by_type},
                     ensure_ascii=False, indent=1))
    (es.home / "tune.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
