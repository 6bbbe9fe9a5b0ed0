"""Load: searches keep answering while a large ingest runs.

A real server (uvicorn, the ``kb serve`` app) on a free loopback port over a tmp KB_HOME; a load
generator in a separate process sends POST /search and times each answer; first idle, then while
``kb ingest`` of a large folder (corpus/'s text, 40 times) runs in a third process. No errors; loaded p50 within
2x of idle p50 (+10 ms), and loaded p99 within 3x of idle p99 or under 150 ms. KB_LOAD_FULL=1 (``make stress``)
sends 10x the requests.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.index.lock import lock_path
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import MINI_DOCS, ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # a server under load, against its idle latency: alone

KEY = "k-load-0123456789"
FULL = os.environ.get("KB_LOAD_FULL", "") not in ("", "0")
REQUESTS = 1000 if FULL else 300  # 300: p99 is the 297th, not one stray answer
QUERIES = ["排采过程中如何控制井底流压", "多分支水平井", "低浓度瓦斯发电", "U型井 直井", "CBM liquefaction LNG",
           "煤层气利用率", "樊庄区块单井日产气量", "煤粉产出 渗透率伤害"]


def generate(port: int, n: int) -> dict[str, Any]:
    """Send ``n`` searches one after another; latencies in ms and every non-200 answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors: list[str] = []
    for i in range(n):
        # a number makes every query new, so each one is embedded (the searcher caches query vectors)
        body = json.dumps({"query": f"{QUERIES[i % len(QUERIES)]} {i}", "top_k": 5}).encode()
        start = time.perf_counter()
        try:
            conn.request("POST", "/search", body, {"Content-Type": "application/json", "X-API-Key": KEY})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or not json.loads(data)["hits"]:
                errors.append(f"{resp.status}: {data[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies.append((time.perf_counter() - start) * 1000)
    return {"latencies": latencies, "errors": errors}


def run_generator(port: int, n: int) -> dict[str, Any]:
    """``generate`` in its own process: the client must not share the test's (or the server's) CPU time slice."""
    code = f"import json; from tests.test_load import generate; print(json.dumps(generate({port}, {n})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "KB_HOME": str(home), "KB_API_KEYS": KEY, "KB_RATE_LIMIT": "0"}


@pytest.fixture
def server(kb_home: Path, tmp_path: Path) -> Iterator[int]:
    """uvicorn serving the app over the mini corpus; yields the port once a search has answered."""
    corpus = tmp_path / "mini"
    corpus.mkdir()
    for name, text in MINI_DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    assert ingest([corpus], Settings(home=kb_home)).failed == []
    port = free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 -- closed below, after the server
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app_from_env", "--factory", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=_env(kb_home),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not run_generator(port, 1)["latencies"] or run_generator(port, 1)["errors"]:
            assert proc.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the server did not answer a search within 180 s"
            time.sleep(1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _summary(run: dict[str, Any]) -> dict[str, float]:
    lat = run["latencies"]
    return {"n": len(lat), "errors": len(run["errors"]), "p50": round(percentile(lat, 50), 1),
            "p99": round(percentile(lat, 99), 1)}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process and its ended children (Linux /proc): every file is parsed
    in a child process (kb/ingest/sandbox.py), so the parent's own time misses the reading."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _large_folder(tmp_path: Path, copies: int = 40) -> Path:
    """The corpus's text documents, each ``copies`` times with a line that makes every copy new: about 9 MB.

    corpus/ alone went in within 6 s on a quiet CI machine (hash embedder), before 100 searches ended."""
    folder = tmp_path / "large"
    folder.mkdir()
    texts = {p: p.read_text(encoding="utf-8") for p in (ROOT / "corpus").rglob("*") if p.suffix in (".md", ".txt")}
    for i in range(copies):
        for p, text in texts.items():
            (folder / f"{p.stem}-{i}{p.suffix}").write_text(f"{text}\n\n副本 {i}。\n", encoding="utf-8")
    return folder


def _wait_for_writer(home: Path, writer: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Until the ingest holds the writer lock (kb.index.lock writes its holder's pid into the lock file)."""
    deadline = time.monotonic() + 120
    while f"pid {writer.pid}:" not in lock_path(home).read_text(errors="replace"):
        assert writer.poll() is None and time.monotonic() < deadline, "the ingest never took the writer lock"
        time.sleep(0.2)


@pytest.mark.timeout(1800)
def test_searches_keep_answering_during_a_large_ingest(server: int, kb_home: Path, tmp_path: Path) -> None:
    run_generator(server, 20)  # warm caches; not measured
    idle = run_generator(server, REQUESTS)
    ingest_log = open(tmp_path / "ingest.log", "wb")  # noqa: SIM115 -- closed below
    # no vector cache for the writer: with it, a corpus embedded before (by any earlier test) goes in
    # in seconds and the searches would not run beside a real ingest
    writer = subprocess.Popen([sys.executable, "-m", "kb.cli", "ingest", str(_large_folder(tmp_path)), "-q"], cwd=ROOT,
                              env={**_env(kb_home), "KB_VECTOR_CACHE": "false"}, stdout=ingest_log,
                              stderr=subprocess.STDOUT)
    try:
        _wait_for_writer(kb_home, writer)
        time.sleep(5)  # past loading the model: the ingest is reading and embedding
        cpu, wall = _cpu_s(writer.pid), time.monotonic()
        loaded = run_generator(server, REQUESTS)
        still_running = writer.poll() is None
        # CPU the ingest used meanwhile (0 if it has already ended: the assertion below says so)
        ingest_cores = (_cpu_s(writer.pid) - cpu) / (time.monotonic() - wall) if still_running else 0.0
    finally:
        writer.terminate()
        writer.wait(timeout=60)
        ingest_log.close()
    figures = {"idle": _summary(idle), "loaded": _summary(loaded), "ingest_ran_throughout": still_running,
               "ingest_cores_used": round(ingest_cores, 2)}
    print(f"\nload figures: {json.dumps(figures)}")
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    assert idle["errors"] == [] and loaded["errors"] == [], (idle["errors"][:3], loaded["errors"][:3])
    assert still_running, "the ingest ended before the loaded run did: make it larger"
    assert ingest_cores > 0.2, figures  # the ingest was working, not waiting (a shared 2-core box gives it 0.3-0.7)
    # starvation (issue 19: median 10 -> 741 ms, worst 5 s) moves the median and the tail together; a 2-core CI
    # box running the server, the client and the ingest's two processes also gives single answers a scheduler
    # wait of tens of ms (CI: idle p99 12.1 ms, loaded p99 42.6 ms, p50 7.9 ms both), so the tail gets a floor
    assert figures["loaded"]["p50"] <= 2 * figures["idle"]["p50"] + 10, figures
    assert figures["loaded"]["p99"] <= max(3 * figures["idle"]["p99"], 150.0), figures
