"""Latency and throughput of POST /search on a running server, from a separate process.

    python scripts/bench_api.py http://127.0.0.1:8000 --requests 200 --concurrency 1 4 16

The load client itself lives in bench/http.py (`make bench` uses it against servers it starts);
this is the same client pointed at a server you already run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing bench

from bench.http import load  # noqa: E402

RUN = f"{time.time_ns() % 100000:05d}"  # unique texts across runs too (the server caches query vectors)
QUERIES = ["排采过程中如何控制井底流压", "多分支水平井", "低浓度瓦斯发电", "煤层气液化 LNG", "U型井 直井",
           "煤粉产出 渗透率伤害", "skid-mounted liquefaction of coalbed methane", "煤层气利用率目标",
           "沁水盆地高煤阶煤层", "甲烷浓度低于30%的瓦斯怎么利用"]


def queries(n: int, unique: bool) -> list[str]:
    """``n`` queries; with ``unique`` each text is new, so every request pays for its query embedding."""
    return [f"{QUERIES[i % len(QUERIES)]} {RUN}-{i}" if unique else QUERIES[i % len(QUERIES)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--key", help="API key, when reads need one")
    ap.add_argument("--repeat", action="store_true", help="reuse 10 queries (the server caches their vectors)")
    args = ap.parse_args()
    headers = {"X-API-Key": args.key} if args.key else {}
    load(args.url, ["预热"], 1, headers)
    for i, c in enumerate(args.concurrency):
        qs = [f"{q}#{i}" if not args.repeat else q for q in queries(args.requests, not args.repeat)]
        print(json.dumps({**load(args.url, qs, c, headers), "unique_queries": not args.repeat}))


if __name__ == "__main__":
    main()
