"""HTTP measurements against `kb serve`: start-to-first-answer, POST /search latency and throughput
under concurrent clients (asyncio + httpx, in this process: a second process to the server), server RSS."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.probe import percentiles


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    start_to_first_answer_s: float
    workers: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: this KB_HOME, read-only, no rate limit (it would cap the load test)."""
    env = dict(os.environ)
    env.update({"KB_HOME": str(home), "KB_RATE_LIMIT": "0", "KB_ALLOW_WRITES": "false", "KB_API_KEYS": "",
                "OMP_WAIT_POLICY": "PASSIVE", **(extra or {})})
    return env


@contextmanager
def serve(home: Path, workers: int, log: Path, timeout_s: float = 300,
          env: dict[str, str] | None = None) -> Iterator[Server]:
    """`kb serve` on a free port; yields once the first POST /search has answered 200."""
    port = free_port()
    kb = Path(sys.executable).with_name("kb")
    cmd = [str(kb), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    t0 = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=server_env(home, env), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        first = _first_answer(url, proc, t0, timeout_s)
        yield Server(url, proc, round(first, 2), workers)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _first_answer(url: str, proc: subprocess.Popen[bytes], t0: float, timeout_s: float) -> float:
    """Seconds from launch to the first 200 from POST /search."""
    with httpx.Client(base_url=url, timeout=60) as c:
        while time.perf_counter() - t0 < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"kb serve exited with {proc.returncode}")
            try:
                if c.post("/search", json={"query": "煤层气", "top_k": 5}).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"kb serve gave no answer in {timeout_s} s")


def tree_rss_mb(pid: int) -> dict[str, float]:
    """Current and peak RSS (VmRSS, VmHWM) summed over a process and its descendants, from /proc."""
    pids, todo = [], [pid]
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += children.get(p, [])
    cur = peak = 0.0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                cur += int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1]) / 1024
    return {"rss_mb": round(cur, 1), "peak_rss_mb": round(peak, 1), "processes": len(pids)}


async def _client(c: httpx.AsyncClient, qs: list[str], out: list[float], errors: list[int],
                  headers: dict[str, str]) -> None:
    for q in qs:
        t0 = time.perf_counter()
        r = await c.post("/search", json={"query": q, "top_k": 10}, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            errors.append(r.status_code)


async def _load(url: str, queries: list[str], clients: int, headers: dict[str, str]) -> dict[str, Any]:
    times: list[float] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(c, queries[i::clients], times, errors, headers) for i in range(clients)))
        wall = time.perf_counter() - t0
    return {"clients": clients, "requests": len(times), "errors": len(errors),
            "throughput_qps": round(len(times) / wall, 1), **percentiles(times)}


def load(url: str, queries: list[str], clients: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST /search with distinct queries from ``clients`` concurrent clients (each waits for its answer)."""
    return asyncio.run(_load(url, queries, clients, headers or {}))


def warm(url: str, workers: int) -> None:
    """Enough concurrent requests that every worker process has loaded its indexes."""
    load(url, [f"煤层气 预热 {i}" for i in range(4 * workers)], 2 * workers)
