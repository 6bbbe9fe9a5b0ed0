"""Helpers shared by the tests (imported by conftest.py and by test modules; never a test module itself)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kb.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "corpus" / "plan" / "qinshui_plan.txt"  # the county plan

MINI_DOCS = {
    "horizontal.md": """# 煤层气水平井技术

## 1. 多分支水平井
沁水盆地高煤阶煤层渗透率低，多分支水平井可以扩大泄气面积。樊庄区块应用多分支水平井后单井日产气量明显提高。

## 2. U型井
U型井由一口水平井和一口直井在煤层中对接而成，直井用于排水采气。
""",
    "dewatering.md": """# 排采控制

## 1. 排采制度
煤层气井排采要控制井底流压缓慢下降，避免煤粉产出和渗透率伤害。排采分为排水降压、不稳定产气和稳定产气阶段。
""",
    "gas_use.md": """# 低浓度瓦斯利用

## 1. 瓦斯发电
甲烷浓度低于30%的煤矿瓦斯可以通过低浓度瓦斯发电机组发电，输送过程需要细水雾等安全保障措施。
""",
    "lng_en.md": """# CBM liquefaction

## 1. Small-scale LNG
Coalbed methane from scattered wells can be liquefied in skid-mounted plants using a mixed refrigerant cycle, then trucked to towns as LNG.
""",
}



def write_docs(root: Path, docs: dict[str, str]) -> Path:
    """Write ``{name: text}`` as UTF-8 files under ``root`` (created); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200 (no proxies: an HTTP(S)_PROXY in the environment must not catch a loopback call)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def _serving(args: list[str], log: Path, probe: str, env: dict[str, str] | None = None,
             timeout_s: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """A server process (output to ``log``), once ``probe`` answers 200; terminated (or killed) at the end."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"{' '.join(args[:4])} did not come up at {probe} (exit {proc.poll()}):\n{tail}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chroma_process(root: Path, port: int) -> Iterator[str]:
    """`chroma run` (the server shipped in the chromadb package) on loopback ``port``, data under ``root``."""
    exe = Path(sys.executable).with_name("chroma")
    cmd = str(exe) if exe.exists() else shutil.which("chroma")
    assert cmd, "the `chroma` command (chromadb package) is not installed"
    url = f"http://127.0.0.1:{port}"
    args = [cmd, "run", "--path", str(root / "chroma-db"), "--host", "127.0.0.1", "--port", str(port)]
    with _serving(args, root / f"chroma-{port}.log", f"{url}/api/v2/heartbeat"):
        yield url


# ---- the network guard -----------------------------------------------------------------------------

REAL_CONNECT = socket.socket.connect


def guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family == socket.AF_UNIX or str(host) in ("127.0.0.1", "::1", "localhost"):
        REAL_CONNECT(self, address)  # type: ignore[arg-type]
        return
    raise AssertionError(f"network access attempted: {address!r}")



# ---- crash tests: what the ``kb`` child process runs before the command ---------------------------------

def die(*_: object, **__: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm_crash(point: str) -> None:
    """Make this process SIGKILL itself at one step of the commit protocol."""
    from kb.index import bm25_build
    from kb.index.manifest import Manifest
    from kb.index.vectors import VectorStore

    if point == "after_upsert":  # the second batch's vectors are in Chroma, its manifest rows are not
        real, calls = VectorStore.upsert, []

        def upsert_then_die(*a: object, **k: object) -> None:
            real(*a, **k)  # type: ignore[arg-type]
            calls.append(1)
            if len(calls) == 2:
                die()

        VectorStore.upsert = upsert_then_die  # type: ignore[method-assign]
    elif point == "after_commit":  # a batch's manifest rows committed, the vectors they replaced still there
        real_delete = VectorStore.delete
        VectorStore.delete = lambda self, ids: die() if ids else real_delete(self, ids)  # type: ignore[method-assign]
    elif point == "in_bm25":  # the new BM25 directory written, the link not yet swapped
        bm25_build.swap = die  # type: ignore[assignment]
    elif point == "before_publish":  # BM25 swapped, the generation not yet published
        Manifest.publish = die  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown crash point {point!r}")


def crash_child_setup() -> None:
    """Run first in the ``kb`` child process: optional crash point, heavy imports, then "ready"."""
    import bm25s  # noqa: F401 -- imported before "ready", so random kills land in the write, not in imports
    import chromadb  # noqa: F401
    import llama_index.vector_stores.chroma  # noqa: F401

    if point := os.environ.get("CBM_TEST_CRASH_AT", ""):
        arm_crash(point)
    print("ready", flush=True)


# ---- the HTTP service ------------------------------------------------------------------------------------

KEY = "k-test-0123456789"


NEEDS, RESULTS = {"N101", "N105", "N106", "N112"}, {"R101", "R105", "R107", "R108", "R110", "R119"}


def write_market_corpus(folder: Path) -> Path:
    """The mini corpus plus four needs and six results from corpus/ (kinds from the folder names)."""
    write_docs(folder, MINI_DOCS)
    for sub, ids in (("needs", NEEDS), ("results", RESULTS)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        lines = (ROOT / "corpus" / sub / "utilisation.jsonl").read_text(encoding="utf-8").splitlines()
        keep = [line for line in lines if line.strip() and json.loads(line)["id"] in ids]
        assert len(keep) == len(ids)
        (folder / sub / "records.jsonl").write_text("\n".join(keep) + "\n", encoding="utf-8")
    return folder


def make_client(home: Path, **overrides: Any) -> TestClient:
    """A TestClient for an app over ``home``; keys set, rate limit off and a search budget a loaded CI box's first
    search (it loads the model: warm=False) fits in, unless overridden."""
    from api.app import create_app

    opts: dict[str, Any] = {"api_keys": KEY, "rate_limit": 0, "search_timeout_s": 120, **overrides}
    return TestClient(create_app(Settings(home=home, **opts), warm=False))


def error(resp: Any, status: int, code: str | None = None) -> str:
    """Assert the one error shape; returns the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code
    return str(body["error"]["message"])


def wait_for(client: TestClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")




# ---- integrations (Dify, MCP, sync): records with every metadata field, and a real `kb serve` ------------

INTEGRATION_RESULTS = [
    {"id": "R901", "title": "撬装式煤层气液化装置", "field": "储运液化", "region": "山西沁水县", "trl": 7, "year": "2021",
     "org": "某装备制造企业", "description": "分散煤层气井口气经撬装混合冷剂循环液化，槽车运往乡镇作为液化天然气供气。"},
    {"id": "R902", "title": "LNG储罐蒸发气回收", "field": "储运液化", "region": "全国", "trl": 5, "year": "2018",
     "org": "某高校低温团队", "description": "煤层气液化后储罐蒸发气经再液化装置回收，减少放空损失。"},
    {"id": "R903", "title": "低浓度瓦斯发电机组", "field": "瓦斯利用", "region": "山西晋城", "trl": 8, "year": "2023",
     "org": "某发电设备企业", "description": "甲烷浓度低于30%的煤层气与煤矿瓦斯经细水雾输送后进入发电机组发电。"},
    {"id": "R904", "title": "煤层气井智能排采控制系统", "field": "排采", "region": "山西沁水县", "trl": 6, "year": "2020",
     "org": "某油服企业", "description": "按井底流压自动调节抽油机冲次，煤层气井排采过程中流压缓慢下降，减少煤粉产出。"},
    {"id": "R905", "title": "多分支水平井钻井技术", "field": "钻完井", "region": "全国", "trl": 9,
     "org": "某钻井公司", "description": "高煤阶煤层气储层多分支水平井扩大泄气面积，单井日产气量明显提高。"},
]
INTEGRATION_NEEDS = [
    {"id": "N901", "title": "排采井底流压控制需求", "field": "排采", "region": "山西沁水县", "trl": 6, "year": "2024",
     "org": "某煤层气开发企业", "description": "煤层气井排采时井底流压下降过快导致煤粉堵塞，希望有自动控制流压的办法。"},
]


def write_integration_corpus(folder: Path) -> Path:
    """The mini corpus plus results/results.jsonl and needs/needs.jsonl above (kinds from the folder names)."""
    write_docs(folder, MINI_DOCS)
    for sub, name, recs in (("results", "results.jsonl", INTEGRATION_RESULTS), ("needs", "needs.jsonl", INTEGRATION_NEEDS)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return folder


def integration_home(root: Path) -> Path:
    """``root``/home with ``write_integration_corpus`` ingested (the settings of the environment: the hash embedder)."""
    from kb.ingest.pipeline import ingest

    home = root / "home"
    assert ingest([write_integration_corpus(root / "corpus")], Settings(home=home)).failed == []
    return home


@contextmanager
def kb_process(args: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m kb.cli ARGS`` (e.g. ``serve``) in its own process, once ``ready`` (a URL) answers 200."""
    with _serving([sys.executable, "-m", "kb.cli", *args], log, ready, {**os.environ, **env}, timeout_s=120) as proc:
        yield proc


@contextmanager
def kb_serve(home: Path, log: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`kb serve` (the deployment path: h11 with its head limit) over ``home`` on a free loopback port, keys set and
    the rate limit off unless ``env`` says otherwise; yields (base URL, process) once a search has answered (the
    first one loads the indexes: on a busy box it can pass the 10 s search budget)."""
    import httpx

    url = f"http://127.0.0.1:{free_port()}"
    full = {"KB_HOME": str(home), "KB_API_KEYS": KEY, "KB_RATE_LIMIT": "0", **env}
    with kb_process(["serve", "--port", url.rsplit(":", 1)[1]], full, f"{url}/health", log) as proc:
        key = {"X-API-Key": full["KB_API_KEYS"].split(",")[0]}
        deadline = time.monotonic() + 120
        while httpx.post(f"{url}/search", json={"query": "煤层气"}, headers=key, timeout=60).status_code != 200:
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        yield url, proc


def proc_usage(pid: int) -> tuple[float, int]:
    """(resident memory in MB, open file descriptors) of a live process (Linux /proc)."""
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))
