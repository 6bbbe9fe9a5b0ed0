"""The command line's fast path: with `kb serve` running on the same KB_HOME, kb search/ask/match ask it instead
of loading the model, and fall back to in-process work when it is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kb.cli.remote import SERVE_FILE
from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import ROOT, free_port, kb_process, write_market_corpus

pytestmark = pytest.mark.slow  # a real `kb serve` process


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, subprocess.Popen[bytes]]]:
    root = tmp_path_factory.mktemp("served")
    home = root / "home"
    assert ingest([write_market_corpus(root / "corpus")], Settings(home=home, embed_model="hash")).failed == []
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"KB_HOME": str(home), "KB_EMBED_MODEL": "hash", "KB_RATE_LIMIT": "0", "KB_URL": "",
           "KB_SEARCH_TIMEOUT_S": "120"}  # a busy test machine: the first search opens every index
    with kb_process(["serve", "--port", str(port), "--dev"], env, f"{url}/health", root / "serve.log") as proc:
        httpx.post(f"{url}/search", json={"query": "排采"}, timeout=120).raise_for_status()  # warm, as a server in use is
        yield home, url, proc


def _kb(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`kb ...` in its own process; KB_EMBED_MODEL names no model, so any in-process search would fail."""
    full = {**os.environ, "KB_HOME": str(home), "KB_EMBED_MODEL": "/no/such/model", "KB_URL": "", **env}
    return subprocess.run([sys.executable, "-m", "kb.cli", *args], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=120)


def test_serve_advertises_itself_in_kb_home(served: tuple[Path, str, subprocess.Popen[bytes]]) -> None:
    home, url, proc = served
    assert json.loads((home / SERVE_FILE).read_text()) == {"url": url, "pid": proc.pid}


def test_search_ask_match_are_answered_by_the_server(served: tuple[Path, str, subprocess.Popen[bytes]]) -> None:
    home, url, _ = served
    r = _kb(home, "search", "U型井", "--top-k", "3", "--json")
    assert r.returncode == 0, r.stderr
    direct = httpx.post(f"{url}/search", json={"query": "U型井", "top_k": 3}).json()
    assert [h["id"] for h in json.loads(r.stdout)["hits"]] == [h["id"] for h in direct["hits"]]
    r = _kb(home, "ask", "排采分为哪几个阶段", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["question"] == "排采分为哪几个阶段", r.stderr
    r = _kb(home, "match", "--need-id", "N101", "--top-k", "2", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["matches"]) == 2, r.stderr
    # the server's refusal is the command's error, as in-process
    r = _kb(home, "search", "。。。")
    assert r.returncode == 2 and r.stderr.startswith("error: query is empty")


def test_without_a_server_it_works_in_process(served: tuple[Path, str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    home, url, _ = served
    # KB_URL=off: in-process, and the bad model shows that it really was
    r = _kb(home, "search", "U型井", KB_URL="off")
    assert r.returncode == 2 and "/no/such/model" in r.stderr
    # a server that is not there: a warning, then the same search in-process
    r = _kb(home, "search", "U型井", "--json", KB_URL=f"http://127.0.0.1:{free_port()}", KB_EMBED_MODEL="hash")
    assert r.returncode == 0 and json.loads(r.stdout)["hits"] and "working in-process" in r.stderr


def test_a_stopped_servers_notice_is_ignored(served: tuple[Path, str, subprocess.Popen[bytes]]) -> None:
    """uvicorn dies of the SIGTERM it re-raises (no atexit), so the notice may stay: its process is gone."""
    home, _, proc = served
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    r = _kb(home, "search", "U型井", "--json", KB_EMBED_MODEL="hash")
    assert r.returncode == 0 and json.loads(r.stdout)["hits"] and r.stderr == ""
