"""Latency of POST /search over HTTP, from a separate process: median and p95 per concurrency level.

    python scripts/bench_api.py http://127.0.0.1:8000 --requests 200 --concurrency 1 8
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

RUN = f"{time.time_ns() % 100000:05d}"  # unique texts across runs too (the server caches query vectors)

QUERIES = ["排采过程中如何控制井底流压", "多分支水平井", "低浓度瓦斯发电", "煤层气液化 LNG", "U型井 直井",
           "煤粉产出 渗透率伤害", "skid-mounted liquefaction of coalbed methane", "煤层气利用率目标",
           "沁水盆地高煤阶煤层", "甲烷浓度低于30%的瓦斯怎么利用"]


async def _worker(client: httpx.AsyncClient, n: int, offset: int, out: list[float], key: str | None,
                  unique: bool) -> None:
    headers = {"X-API-Key": key} if key else {}
    for i in range(n):
        q = QUERIES[(offset + i) % len(QUERIES)]
        if unique:  # a new text each time, so every request pays for its query embedding
            q = f"{q} {RUN}-{offset}-{i}"
        t0 = time.perf_counter()
        r = await client.post("/search", json={"query": q, "top_k": 10}, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()


async def run(url: str, requests: int, concurrency: int, key: str | None, unique: bool) -> dict[str, float]:
    times: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.post("/search", json={"query": "预热", "top_k": 1}, headers={"X-API-Key": key} if key else {})
        t0 = time.perf_counter()
        per = requests // concurrency
        await asyncio.gather(*(_worker(client, per, i * 7, times, key, unique) for i in range(concurrency)))
        wall = time.perf_counter() - t0
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    return {"clients": concurrency, "unique_queries": unique, "requests": len(times),
            "median_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1), "max_ms": round(times[-1], 1),
            "throughput_rps": round(len(times) / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--key", help="API key, when reads need one")
    ap.add_argument("--repeat", action="store_true", help="reuse 10 queries (the server caches their vectors)")
    args = ap.parse_args()
    for c in args.concurrency:
        print(asyncio.run(run(args.url, args.requests, c, args.key, not args.repeat)))


if __name__ == "__main__":
    main()
