"""Shared fixtures: a tmp KB_HOME, a no-network guard, a small bilingual CBM corpus, a Chroma server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kb.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "corpus" / "plan" / "qinshui_plan.txt"
if not SEED.exists():  # before the corpus folder is populated, the shared seed is the same file
    SEED = next((ROOT.parent / "shared" / "seed").glob("*.txt"))

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family == socket.AF_UNIX or str(host) in ("127.0.0.1", "::1", "localhost"):
        _real_connect(self, address)  # type: ignore[arg-type]
        return
    raise AssertionError(f"network access attempted: {address!r}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection off this machine fails the test (models and data must be local)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def kb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty KB_HOME."""
    home = tmp_path / "kbhome"
    monkeypatch.setenv("KB_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def settings(kb_home: Path) -> Settings:
    return get_settings()


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


@pytest.fixture
def mini_corpus(tmp_path: Path) -> Path:
    """Four short documents, three Chinese and one English."""
    d = tmp_path / "mini"
    d.mkdir()
    for name, text in MINI_DOCS.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _heartbeat(url: str) -> bool:
    # no proxies: an HTTP(S)_PROXY in the environment must not catch a loopback call
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/api/v2/heartbeat", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def chroma_process(root: Path, port: int) -> Iterator[str]:
    """`chroma run` (the server shipped in the chromadb package) on loopback ``port``, data under ``root``."""
    exe = Path(sys.executable).with_name("chroma")
    cmd = str(exe) if exe.exists() else shutil.which("chroma")
    assert cmd, "the `chroma` command (chromadb package) is not installed"
    url = f"http://127.0.0.1:{port}"
    log = root / f"chroma-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([cmd, "run", "--path", str(root / "chroma-db"), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _heartbeat(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"chroma run did not come up on {url} (exit {proc.poll()}):\n{tail}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Chroma server for the whole session, on a free loopback port."""
    with chroma_process(tmp_path_factory.mktemp("chroma-server"), free_port()) as url:
        yield url


@pytest.fixture
def chroma_url(chroma_server: str, kb_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's settings use the shared Chroma server, in a collection of their own (tests stay independent)."""
    monkeypatch.setenv("KB_CHROMA_URL", chroma_server)
    monkeypatch.setenv("KB_CHROMA_COLLECTION", f"test-{uuid.uuid4().hex}")
    get_settings.cache_clear()
    return chroma_server
