"""Unfitted fusion variants on the cached candidate lists (run: python -m eval.fusion_variants [cbm,cmrc2018,csl_sci]).

Fixed weights either way, DBSF, min-max over only the top d of each list, query-adaptive weights from the two
lists' spread, and a bonus for a second ranked chunk of the same section; unit-level Recall@5 / nDCG@10 per
dataset. Tried on eval/cbm first (the cheapest set and the one short of its target, docs/EVAL.md).
"""

from __future__ import annotations

import argparse
import collections
import math
from collections.abc import Callable

import numpy as np

from eval.candidates import DATASETS, load
from eval.fusion_fit import metrics, table
from kb.evaluation.candidates import Candidates
from kb.search.fuse import Ranked, dbsf, minmax

Scaled = dict[str, float]


def top_minmax(hits: Ranked, depth: int) -> Scaled:
    """Min-max over the first ``depth`` hits only; the rest score 0."""
    return minmax(hits[:depth])


def spread(hits: Ranked) -> float:
    """How far the list's best stands above its median, in standard deviations."""
    s = np.array([x for _, x in hits])
    return 0.0 if len(s) < 2 else float((s.max() - np.median(s)) / max(float(s.std()), 1e-3))


def scaled(kind: str, p: float, d: Ranked, b: Ranked) -> tuple[Scaled, Scaled, float]:
    """Each list scaled, and the dense weight, for one variant."""
    if kind == "relative":
        return minmax(d), minmax(b), p
    if kind == "dbsf":
        return dbsf(d), dbsf(b), p
    if kind == "depth":
        return top_minmax(d, int(p)), top_minmax(b, int(p)), 0.5
    if kind == "adaptive":
        return minmax(d), minmax(b), 1 / (1 + math.exp(-p * (spread(d) - spread(b))))
    return minmax(d), minmax(b), 0.5  # "section": scores as relative, then the bonus


def variant(kind: str, p: float, chunks: dict[str, dict[str, str]]) -> Callable[[Candidates], list[str]]:
    def order(it: Candidates) -> list[str]:
        sd, sb, wd = scaled(kind, p, it.lists["dense"], it.lists["bm25"])
        sc: dict[str, float] = collections.defaultdict(float)
        for i, v in sd.items():
            sc[i] += wd * v
        for i, v in sb.items():
            sc[i] += (1 - wd) * v
        if kind == "section":
            def unit(i: str) -> tuple[str, str]:
                c = chunks.get(i)
                return (c["doc_id"], c["section"]) if c else (i, "")
            per: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
            for i, v in sc.items():
                per[unit(i)].append(v)
            second = {u: sorted(v)[-2] if len(v) > 1 else 0.0 for u, v in per.items()}
            sc = {i: v + p * second[unit(i)] for i, v in sc.items()}
        return sorted(sc, key=lambda i: (-sc[i], i))
    return order


GRID = ([("relative", w) for w in (0.4, 0.5, 0.6)] + [("dbsf", w) for w in (0.4, 0.5, 0.6)]
        + [("depth", d) for d in (10, 20, 50)] + [("adaptive", g) for g in (0.1, 0.3, 0.6)]
        + [("section", b) for b in (0.1, 0.3)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", nargs="?", default="cbm", help="comma-separated dataset names")
    names = p.parse_args().names.split(",")
    for ds in DATASETS:
        if ds.name not in names:
            continue
        cs = load(ds, quiet=True)
        t = table(ds.name, cs)
        for kind, param in GRID:
            f = variant(kind, param, cs.chunks)
            orders = [f(it) for it in cs.items]
            m = metrics(t, lambda j, o=orders: o[j])  # type: ignore[misc]
            print(f"{ds.name}\t{kind} {param}\t{m['recall@5']:.4f}\t{m['ndcg@10']:.4f}", flush=True)


if __name__ == "__main__":
    main()
