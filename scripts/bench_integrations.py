"""Latency of Dify's POST /dify/retrieval, of an MCP ``search`` call over HTTP (/mcp), and of POST /search beside
them, on a running server, one call at a time from this separate process.

    python scripts/bench_integrations.py http://127.0.0.1:8000 --key KEY --calls 300

Each call has a query text of its own (so each pays for its query embedding, as real traffic does); the three
endpoints take turns, so a change in the machine's load touches all three alike. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

QUERIES = ["排采过程中如何控制井底流压", "多分支水平井", "低浓度瓦斯发电", "煤层气液化 LNG", "U型井 直井",
           "煤粉产出 渗透率伤害", "skid-mounted liquefaction of coalbed methane", "煤层气利用率目标",
           "沁水盆地高煤阶煤层", "甲烷浓度低于30%的瓦斯怎么利用"]
RUN = f"{time.time_ns() % 100000:05d}"


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"calls": len(ms), "median_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[max(0, int(round(0.95 * len(ordered))) - 1)], 1),
            "mean_ms": round(statistics.fmean(ordered), 1)}


async def run(url: str, key: str, calls: int, top_k: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    times: dict[str, list[float]] = {"dify_retrieval": [], "mcp_search": [], "rest_search": []}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as rest:
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
                for i in range(-3, calls):  # three warm-up rounds, not counted
                    q = f"{QUERIES[i % len(QUERIES)]} {RUN}-{i}"
                    t = time.perf_counter()
                    body = {"knowledge_id": "all", "query": q + " d",
                            "retrieval_setting": {"top_k": top_k, "score_threshold": 0.0}}
                    r = rest.post("/dify/retrieval", content=json.dumps(body), headers={"Content-Type": "application/json"})
                    assert r.status_code == 200 and r.json()["records"], r.text
                    t2 = time.perf_counter()
                    res = await mcp.call_tool("search", {"query": q + " m", "top_k": top_k})
                    assert not res.is_error and res.structured_content and res.structured_content["hits"]
                    t3 = time.perf_counter()
                    r = rest.post("/search", json={"query": q + " s", "top_k": top_k})
                    assert r.status_code == 200 and r.json()["hits"], r.text
                    t4 = time.perf_counter()
                    if i >= 0:
                        for name, ms in zip(times, ((t2 - t) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3), strict=True):
                            times[name].append(ms)
    return {name: _stats(ms) for name, ms in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--key", default="", help="an API key (KB_API_KEYS)")
    ap.add_argument("--calls", type=int, default=300, help="calls to each endpoint")
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args()
    load_before = os.getloadavg()
    start = time.perf_counter()
    out = asyncio.run(run(args.url.rstrip("/"), args.key, args.calls, args.top_k))
    print(json.dumps({**out, "top_k": args.top_k, "wall_s": round(time.perf_counter() - start, 1),
                      "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
