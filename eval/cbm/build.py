"""Assemble eval/cbm/queries.jsonl from the hand-written parts and the corpus's need records.

Run: python eval/cbm/build.py   (deterministic; re-run after editing parts/ or corpus/needs/)
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def need_queries() -> list[dict[str, object]]:
    """One need_result query per need: the need's description, relevant = the results that solve it."""
    needs = {}
    for f in sorted((ROOT / "corpus" / "needs").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                needs[rec["id"]] = rec
    out = []
    for f in sorted((HERE / "parts").glob("need_pairs_*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                pair = json.loads(line)
                need = needs[pair["need_id"]]
                out.append({"id": f"Q-NR-{need['id']}", "text": need["description"],
                            "relevant_ids": pair["relevant_ids"], "type": "need_result",
                            "filters": {"kind": "result"}})
    return out


def main() -> None:
    rows: list[dict[str, object]] = []
    for f in sorted((HERE / "parts").glob("*_queries.jsonl")):
        rows += [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows += need_queries()
    ids = [r["id"] for r in rows]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate query ids")
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (HERE / "queries.jsonl").write_text(text, encoding="utf-8")
    types: dict[str, int] = {}
    for r in rows:
        types[str(r["type"])] = types.get(str(r["type"]), 0) + 1
    print(f"{len(rows)} queries: {types}")


if __name__ == "__main__":
    main()
