"""Need/result matching accuracy and cited-QA quality on labelled data (run: python -m eval.match_eval).

Uses the index under KB_HOME; build it first with ``kb ingest corpus/``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
from pathlib import Path
from typing import Any

from kb.lang.text import fold, normalize
from kb.search.ask import FOUND_THRESHOLD, Asker, pick
from kb.search.hybrid import Searcher, clean_query
from kb.search.match import Filters, Matcher
from kb.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
PAIRS = str(ROOT / "eval" / "cbm" / "parts" / "need_pairs_*.jsonl")
PLAN_QUERIES = ROOT / "eval" / "cbm" / "parts" / "plan_queries.jsonl"
# Questions the corpus cannot answer, written without looking at scores: ``found`` must be false.
OFF_TOPIC = (
    "火星大气中的甲烷浓度是多少？", "北京到上海的高铁票价是多少？", "沁水县2035年计划发射几颗卫星？",
    "量子计算机的纠错阈值是多少？", "东京奥运会中国获得多少枚金牌？", "沁水县有多少家米其林餐厅？",
    "深海锰结核开采技术由哪家公司负责？", "沁水县的地铁线路规划有几条？",
)


def load_pairs(pattern: str) -> dict[str, set[str]]:
    """need id -> ids of the results that solve it, from every file matching the glob."""
    out: dict[str, set[str]] = {}
    for path in sorted(glob.glob(pattern)):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.setdefault(row["need_id"], set()).update(row["relevant_ids"])
    return out


def match_accuracy(settings: Settings, pairs_glob: str = PAIRS) -> dict[str, Any]:
    """Top-1 / top-3 hit rate of need -> results, and top-3 of result -> needs, on labelled pairs."""
    pairs = load_pairs(pairs_glob)
    matcher = Matcher(settings)
    needs, results = matcher.records("need"), matcher.records("result")
    weights = matcher.weights()
    top1 = top3 = 0
    missing = sorted(n for n in pairs if n not in needs)
    for nid, relevant in pairs.items():
        if nid in needs:
            got = [m.doc_id for m in matcher.rank(needs[nid], results, Filters(), 3, weights)]
            top1 += got[0] in relevant
            top3 += bool(set(got) & relevant)
    back = back_hits = 0
    for rid in sorted({r for rel in pairs.values() for r in rel} & results.keys()):
        back_got = {m.doc_id for m in matcher.rank(results[rid], needs, Filters(), 3, weights)}
        back += 1
        back_hits += bool(back_got & {n for n, rel in pairs.items() if rid in rel})
    n = len(pairs) - len(missing)
    matcher.close()
    return {"top1": round(top1 / max(n, 1), 3), "top3": round(top3 / max(n, 1), 3), "n": n,
            "result_to_need_top3": round(back_hits / max(back, 1), 3), "n_results": back, "missing_needs": missing}


def answer_hit(expected: str, answer: str) -> bool:
    """The expected answer string occurs in the answer (width, case and spaces ignored)."""
    def squash(t: str) -> str:
        return re.sub(r"\s+", "", fold(normalize(t)))

    return bool(expected) and squash(expected) in squash(answer)


def _questions(path: Path, qtype: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r.get("type") == qtype and r.get("answer")]


def ask_eval(settings: Settings, queries_path: Path = PLAN_QUERIES, qtype: str = "plan_fact") -> dict[str, Any]:
    """Answer hit rate and found precision on labelled questions; false-found rate on off-topic ones."""
    asker = Asker(settings)
    qs = _questions(queries_path, qtype)
    found = hits = 0
    for q in qs:
        r = asker.ask(q["text"])
        found += r.found
        hits += r.found and answer_hit(q["answer"], r.answer)  # a not-found answer holds no sentence
    off = sum(asker.ask(q).found for q in OFF_TOPIC)
    asker.close()
    return {"type": qtype, "n": len(qs), "answer_hit_rate": round(hits / max(len(qs), 1), 3),
            "found_rate": round(found / max(len(qs), 1), 3), "found_precision": round(hits / max(found, 1), 3),
            "off_topic_found": f"{off}/{len(OFF_TOPIC)}", "threshold": FOUND_THRESHOLD}


def calibrate(settings: Settings, queries_path: Path = PLAN_QUERIES) -> dict[str, Any]:
    """Best-sentence scores of the plan_fact questions (with answer hit) and of the off-topic ones."""
    asker = Asker(settings)
    searcher: Searcher = asker.searcher

    def best(question: str, expected: str) -> tuple[float, bool]:
        q = clean_query(question)
        chosen = pick(asker.score(q, searcher.search(q, top_k=8).hits))
        text = "".join(s.text for s in chosen)
        return (round(chosen[0].score, 4) if chosen else 0.0), answer_hit(expected, text)

    pos = sorted(best(q["text"], q["answer"]) for q in _questions(queries_path, "plan_fact"))
    neg = sorted(best(q, "")[0] for q in OFF_TOPIC)
    asker.close()
    return {"plan_fact": pos, "off_topic": neg, "ceiling_hit_rate": round(sum(ok for _, ok in pos) / max(len(pos), 1), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pairs", default=PAIRS, help="glob of need_pairs JSONL files")
    p.add_argument("--queries", type=Path, default=PLAN_QUERIES)
    p.add_argument("--calibrate", action="store_true", help="print the score distributions behind FOUND_THRESHOLD")
    args = p.parse_args()
    s = get_settings()
    if args.calibrate:
        print(json.dumps(calibrate(s, args.queries), ensure_ascii=False))
        return
    out = {"match": match_accuracy(s, args.pairs), "ask": ask_eval(s, args.queries)}
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
