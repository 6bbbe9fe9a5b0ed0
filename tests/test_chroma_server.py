"""Client/server mode: what only a real `chroma run` server shows (tests/test_ingest.py and
tests/test_search.py run against the server too, through conftest's ``store_backend``).

Every test here runs with KB_CHROMA_URL pointing at the session's server (tests/conftest.py
``chroma_server``) and a collection of its own; the BM25 index and the manifest stay in KB_HOME.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from kb.errors import NetworkForbiddenError
from kb.index.vectors import StoreUnavailableError, VectorStore, collection_for
from kb.ingest.pipeline import ingest
from kb.search.hybrid import Searcher
from kb.settings import Settings
from tests.utils import MINI_DOCS, chroma_process, free_port

pytestmark = pytest.mark.slow  # a `chroma run` server process


@pytest.fixture(autouse=True)
def _server_mode(chroma_url: str, kb_home: Path) -> Iterator[None]:
    """Every test in this module talks to the Chroma server; none may fall back to the embedded store."""
    yield
    assert not (kb_home / "chroma").exists(), "this test opened the embedded store, not the server"


def test_vectors_live_on_the_server_not_in_kb_home(mini_corpus: Path, settings: Settings) -> None:
    rep = ingest([mini_corpus], settings)
    assert rep.failed == [] and rep.chunks > 0
    assert not settings.chroma_dir.exists()
    assert VectorStore(collection_for(settings)).count() == rep.chunks


def test_collections_keep_two_knowledge_bases_apart(mini_corpus: Path, settings: Settings, tmp_path: Path) -> None:
    ingest([mini_corpus], settings)
    other = settings.model_copy(update={"home": tmp_path / "other", "chroma_collection": "other-kb"})
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "gas_use.md").write_text(MINI_DOCS["gas_use.md"], encoding="utf-8")
    assert ingest([tmp_path / "one"], other).ingested == 1
    ours, theirs = VectorStore(collection_for(settings)), VectorStore(collection_for(other))
    assert theirs.ids() < ours.ids()  # same content, same chunk id; each collection holds its own copy
    assert len(ours.ids()) > len(theirs.ids()) == 1


def test_open_reader_sees_a_later_ingest(mini_corpus: Path, settings: Settings, tmp_path: Path) -> None:
    """What a second API worker relies on: a Searcher opened before a write finds the new document."""
    first = tmp_path / "first"
    first.mkdir()
    (first / "horizontal.md").write_text(MINI_DOCS["horizontal.md"], encoding="utf-8")
    ingest([first], settings)
    reader = Searcher(settings)
    assert {h.doc_id for h in reader.search("低浓度瓦斯发电", top_k=5).hits} == {"horizontal"}
    ingest([mini_corpus], settings)  # the writer: another process in production
    for method in ("dense", "bm25"):
        assert reader.search("低浓度瓦斯发电", top_k=1, method=method).hits[0].doc_id == "gas_use", method
    reader.close()


def test_server_never_embeds_text_itself(settings: Settings) -> None:
    col = collection_for(settings)
    with pytest.raises(NetworkForbiddenError):
        col.query(query_texts=["煤层气"], n_results=1)
    with pytest.raises(NetworkForbiddenError):
        col.add(ids=["x"], documents=["煤层气"])


def test_no_server_is_one_clear_error(settings: Settings) -> None:
    down = settings.model_copy(update={"chroma_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(StoreUnavailableError, match="no Chroma server answers at http://127.0.0.1:") as err:
        Searcher(down)
    assert (err.value.code, err.value.status) == ("store_unavailable", 503)


@pytest.mark.slow  # starts and stops a Chroma server twice
def test_api_answers_503_while_chroma_is_down_and_recovers(settings: Settings, tmp_path: Path) -> None:
    """A worker may start before Chroma or outlive a restart of it: 503 meanwhile, and no restart of its own."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    port = free_port()
    app_settings = settings.model_copy(update={"chroma_url": f"http://127.0.0.1:{port}", "api_keys": "k"})

    def status() -> tuple[int, str]:
        r = client.post("/search", json={"query": "煤层气"})
        return r.status_code, r.json().get("error", {}).get("code", "")

    with TestClient(create_app(app_settings, warm=False)) as client:
        assert status() == (503, "store_unavailable")  # not started yet
        with chroma_process(tmp_path, port):
            assert status() == (200, "")
        assert status() == (503, "store_unavailable")  # gone while the worker held its collection
        with chroma_process(tmp_path, port):
            assert status() == (200, "")


@pytest.mark.parametrize("url", ["127.0.0.1:8001", "ftp://127.0.0.1:8001", "http://127.0.0.1:8001/api",
                                 "http://127.0.0.1:99999"])
def test_bad_chroma_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="KB_CHROMA_URL"):
        Settings(chroma_url=url)


def test_bad_collection_name_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="KB_CHROMA_COLLECTION"):
        Settings(chroma_collection="a b")
