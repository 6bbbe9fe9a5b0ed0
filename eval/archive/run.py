"""Top-5 hit rate on the archive set, with whichever ``kb`` is importable (so main's code can be measured too).

    python eval/archive/run.py FOLDER HOME [--out result.json]

Ingests FOLDER (built by eval/archive/build.py) into a fresh KB HOME with the default settings (the bundled
e5 model), asks every question of questions.jsonl with hybrid search, and counts a question answered when
one of its top 5 hits comes from an expected document and holds the answer (whitespace and width ignored).
Standalone on purpose: it uses only ``kb.ingest.pipeline.ingest`` and ``kb.search.hybrid.Searcher``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _canon(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _matches(doc_id: str, wanted: list[str]) -> bool:
    return any(doc_id.startswith(w[:-1]) if w.endswith("*") else doc_id == w for w in wanted)


def main() -> None:
    folder, home = Path(sys.argv[1]), Path(sys.argv[2])
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else None
    os.environ["KB_HOME"] = str(home)
    from kb.ingest.pipeline import ingest
    from kb.search.hybrid import Searcher
    from kb.settings import Settings

    settings = Settings()
    t0 = time.perf_counter()
    report = ingest([folder], settings)
    ingest_s = time.perf_counter() - t0
    questions = [json.loads(x) for x in (HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    searcher = Searcher(settings)
    rows = []
    for q in questions:
        hits = searcher.search(q["q"], top_k=5, method="hybrid").hits
        ok = any(_matches(h.doc_id, q["docs"]) and _canon(q["answer"]) in _canon(h.text) for h in hits)
        rows.append({**q, "hit": ok, "top": [h.doc_id for h in hits]})
    searcher.close()
    result = {"ingested": report.ingested, "chunks": report.chunks, "ingest_s": round(ingest_s, 1),
              "failed": [{"file": Path(f.path).name, "error": f.error} for f in report.failed],
              "load_avg": os.getloadavg()[0]}
    for kind in ("text", "ocr"):
        mine = [r for r in rows if r["kind"] == kind]
        result[f"top5_{kind}"] = round(sum(r["hit"] for r in mine) / len(mine), 3)
        result[f"n_{kind}"] = len(mine)
    result["questions"] = rows
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if out:
        out.write_text(text, encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "questions"}, ensure_ascii=False, indent=1))
    for r in rows:
        if not r["hit"]:
            print("MISS", r["kind"], r["q"], r["top"])


if __name__ == "__main__":
    main()
