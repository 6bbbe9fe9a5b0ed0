"""Calibrated need -> result matching: fit on the labelled need pairs, judged on the problem-language set
(run: python -m eval.match_fit [--write]).

Fitted on eval/cbm/parts/need_pairs_*.jsonl (74 needs written by others over corpus/results): the weights
of the views (title, description, thesaurus problems, shared terms), each standardised against the
candidate pool, and the logistic map from the resulting score and the best candidate's lead over the next
to the probability that a candidate solves the need (the same needs with their right results removed
stand for needs with none). Judged, never fitted, on eval/match_plain/ (needs in plant-floor words, hard distractors,
needs with no right result). ``--write`` stores the fit in kb/resources/match_calibration.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.match_eval import PAIRS, load_pairs
from kb.evaluation.metrics import home_for
from kb.evaluation.runner import build_index
from kb.ingest.pipeline import ingest
from kb.search.match import Matcher
from kb.search.match.scoring import VIEWS, Scored, standardised
from kb.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
PLAIN = ROOT / "eval" / "match_plain"
STRONG = 0.5  # the probability a "strong match" must reach: an even chance that it solves the need
UNANSWERABLE = 0.25  # needs without a right result, per need with one, in the fit (a prior, not measured)
Pools = list[tuple[str, set[str], list[Scored]]]


def plain_index(settings: Settings) -> Settings:
    """An index of the public results plus the problem-language needs and distractors (cached)."""
    s = settings.model_copy(update={"home": home_for(settings.home / "eval", PLAIN, settings)})
    rep = ingest([ROOT / "corpus" / "results", PLAIN / "results.jsonl", PLAIN / "needs.jsonl"], s)
    if rep.failed:
        raise SystemExit(f"match_plain failed to ingest: {rep.failed[0]}")
    return s


def pools(settings: Settings, pairs: dict[str, set[str]], thesaurus: bool = True) -> Pools:
    """Per labelled need: its right results and every result scored (raw parts)."""
    m = Matcher(settings, thesaurus=thesaurus)
    needs, results, weights = m.records("need"), m.records("result"), m.weights()
    out = [(n, rel, m.candidates(needs[n], results, weights)) for n, rel in sorted(pairs.items()) if n in needs]
    m.close()
    return out


def views(pool: list[Scored]) -> np.ndarray:
    """Per candidate, each view standardised against the pool (MatchCalibration.rank_scores' columns)."""
    return np.column_stack([standardised([getattr(x, "problem" if v == "problem" else v) for x in pool], skip_none=True)
                            for v in VIEWS])


def removed(data: Pools) -> Pools:
    """The same needs against pools without their right results: needs with no right result, for the
    "no strong match" side of the calibration."""
    return [(n, set(), [x for x in pool if x.cand.doc_id not in rel]) for n, rel, pool in data if rel]


def scored(pool: list[Scored], w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranking score s and lead of every candidate (lead > 0 only for the best)."""
    s = views(pool) @ w + np.array([x.adjust for x in pool])
    top2 = np.sort(s)[-2:] if len(s) > 1 else np.array([s[0], s[0]])
    return s, s - np.where(s == top2[-1], top2[0], top2[-1])


def fit(data: Pools, unanswerable: float) -> tuple[np.ndarray, tuple[float, float, float]]:
    """View weights from the pools with a right result; then P from (s, lead), the no-result pools
    weighing ``unanswerable`` of the others."""
    from sklearn.linear_model import LogisticRegression

    with_rel = [(n, rel, pool) for n, rel, pool in data if rel]
    x = np.vstack([views(pool) for _, _, pool in with_rel])
    y = np.concatenate([[c.cand.doc_id in rel for c in pool] for _, rel, pool in with_rel]).astype(float)
    w = LogisticRegression(C=1.0, max_iter=1000).fit(x, y).coef_[0]
    # a similarity view may only add evidence: one fitted below zero (collinear with another) is left out
    keep = w > 0
    if not keep.all():
        w = np.zeros(len(w))
        w[keep] = LogisticRegression(C=1.0, max_iter=1000).fit(x[:, keep], y).coef_[0]
    rows, ys, ws = [], [], []
    for pools_, share in ((with_rel, 1.0), (removed(with_rel), unanswerable)):
        for _, rel, pool in pools_:
            s, lead = scored(pool, w)
            rows.append(np.column_stack([s, lead]))
            ys.append(np.array([c.cand.doc_id in rel for c in pool], dtype=float))
            ws.append(np.full(len(pool), share / len(pools_)))
    yy, ww = np.concatenate(ys), np.concatenate(ws)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(np.vstack(rows), yy, sample_weight=ww * len(yy) / ww.sum())
    return w, (float(lr.coef_[0][0]), float(lr.coef_[0][1]), float(lr.intercept_[0]))


def judge(data: Pools, w: np.ndarray, abc: tuple[float, float, float]) -> dict[str, Any]:
    """top-1 / top-3 over needs with a right result; share shown as a strong match, with and without one."""
    a, b, c = abc
    top1 = top3 = strong_right = strong_none = with_result = without = 0
    wrong: list[str] = []
    for need, rel, pool in data:
        s, lead = scored(pool, w)
        ids = [x.cand.doc_id for x in pool]
        order = np.argsort(-s, kind="stable")
        best = ids[order[0]]
        p = 1 / (1 + math.exp(-(a * s[order[0]] + b * lead[order[0]] + c)))
        if rel:
            with_result += 1
            top1 += best in rel
            top3 += bool({ids[j] for j in order[:3]} & rel)
            strong_right += p >= STRONG
            if best not in rel:
                wrong.append(f"{need}->{best}")
        else:
            without += 1
            strong_none += p >= STRONG
    return {"needs_with_result": with_result, "top1": round(top1 / max(with_result, 1), 3),
            "top3": round(top3 / max(with_result, 1), 3),
            "strong_when_right_exists": round(strong_right / max(with_result, 1), 3),
            "needs_without_result": without, "strong_when_none_exists": f"{strong_none}/{without}", "wrong_top1": wrong}


def judge_raw(data: Pools) -> dict[str, float]:
    """top-1 / top-3 by the combined score alone (the ranking before calibration: semantic x 0.7 + terms x 0.3,
    no pool standardisation), over needs with a right result."""
    with_rel = [(pool, rel) for _, rel, pool in data if rel]
    top = [[x.cand.doc_id for x in sorted(pool, key=lambda x: (-x.raw, x.cand.doc_id))[:3]] for pool, _ in with_rel]
    return {"top1": round(sum(t[0] in rel for t, (_, rel) in zip(top, with_rel, strict=True)) / len(top), 3),
            "top3": round(sum(bool(set(t) & rel) for t, (_, rel) in zip(top, with_rel, strict=True)) / len(top), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="store the fit in kb/resources/match_calibration.json")
    args = p.parse_args()
    settings = get_settings()
    labelled = pools(build_index(ROOT / "eval" / "cbm", ROOT / "corpus", settings, None), load_pairs(PAIRS))
    plain = pools(plain_index(settings), load_pairs(str(PLAIN / "pairs.jsonl")))
    w, abc = fit(labelled, UNANSWERABLE)
    out = {"view_weights": dict(zip(VIEWS, np.round(w, 4).tolist(), strict=True)), "platt": [round(v, 4) for v in abc],
           "labelled (fitted on)": judge(labelled, w, abc),
           "labelled, right results removed": judge(removed(labelled), w, abc),
           "problem-language set": judge(plain, w, abc),
           "problem-language set, combined score only (before calibration)": judge_raw(plain)}
    for name, views_used in (("without the thesaurus view", ("title", "description", "terms")),
                             ("title + description only", ("title", "description"))):
        keep = np.array([v in views_used for v in VIEWS])
        wv = np.where(keep, w, 0.0)
        out[f"problem-language set, {name} (same fit, other views zeroed)"] = judge(plain, wv, abc)
    # the thesaurus ablation: results not expanded at all, the calibration fitted again without it
    bare = pools(build_index(ROOT / "eval" / "cbm", ROOT / "corpus", settings, None), load_pairs(PAIRS), thesaurus=False)
    bare_plain = pools(plain_index(settings), load_pairs(str(PLAIN / "pairs.jsonl")), thesaurus=False)
    wb, abcb = fit(bare, UNANSWERABLE)
    out["problem-language set, no thesaurus expansion (fitted again without it)"] = judge(bare_plain, wb, abcb)
    out["labelled, no thesaurus expansion"] = judge(bare, wb, abcb)
    print(json.dumps(out, ensure_ascii=False, indent=1))
    if args.write:
        data = {"views": list(VIEWS), "weights": [round(float(v), 6) for v in w], "a": round(abc[0], 6),
                "b": round(abc[1], 6), "c": round(abc[2], 6), "strong": STRONG, "unanswerable_share": UNANSWERABLE,
                "fitted_by": "python -m eval.match_fit --write", "fitted_on": ["eval/cbm/parts/need_pairs_*.jsonl"],
                "judged_on": "eval/match_plain", "date": time.strftime("%Y-%m-%d"), "results": out}
        (ROOT / "kb" / "resources" / "match_calibration.json").write_text(
            json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
