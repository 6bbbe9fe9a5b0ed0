"""The kb CLI contract: JSON fields, exit codes, batch mode."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kb.cli import main

from .conftest import SEED


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_ingest_search_stats_delete_json(mini_corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.xyz"
    bad.write_text("?", encoding="utf-8")
    code, out, _ = _run("ingest", str(mini_corpus), str(bad), "--json")
    rep = json.loads(out)
    assert code == 1
    assert (rep["ingested"], rep["skipped"], rep["failed"][0]["path"]) == (4, 0, str(bad))
    assert rep["chunks"] >= 4

    code, out, _ = _run("search", "U型井", "--top-k", "2", "--json")
    res = json.loads(out)
    assert code == 0 and res["query"] == "U型井" and isinstance(res["took_ms"], float)
    hit = res["hits"][0]
    assert set(hit) >= {"id", "doc_id", "score", "text", "title", "kind", "source", "section", "page"}
    assert hit["doc_id"] == "horizontal" and hit["page"] is None

    code, out, _ = _run("stats", "--json")
    assert json.loads(out)["documents"] == 4

    code, out, _ = _run("delete", "horizontal")
    assert code == 0 and "deleted horizontal" in out
    assert json.loads(_run("stats", "--json")[1])["documents"] == 3


def test_errors_are_one_line_and_nonzero(mini_corpus: Path) -> None:
    _run("ingest", str(mini_corpus), "-q")
    code, _, err = _run("search", "煤层气", "--filter", "colour=red")
    assert code == 2 and err.strip().startswith("error: unknown filter 'colour'")
    code, _, err = _run("delete", "no-such-doc")
    assert code == 2 and "no document with id 'no-such-doc'" in err


def test_search_batch_loads_once_and_answers_per_line(mini_corpus: Path, tmp_path: Path) -> None:
    _run("ingest", str(mini_corpus), "-q")
    qs = tmp_path / "q.jsonl"
    qs.write_text('{"id": "a", "text": "U型井"}\n{"id": "b", "text": "。。"}\nnot json\n', encoding="utf-8")
    code, out, _ = _run("search", "--batch", str(qs), "--top-k", "1")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [x.get("id") for x in lines] == ["a", "b", None]
    assert lines[0]["hits"][0]["doc_id"] == "horizontal"
    assert "error" in lines[1] and "error" in lines[2]


def test_bad_setting_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KB_LEXICAL", "words")
    code, _, err = _run("stats")
    assert code == 1 and "KB_LEXICAL must be one of" in err


def test_ingest_plan_twice_counts_the_same() -> None:
    first = json.loads(_run("ingest", str(SEED), "--json")[1])
    second = json.loads(_run("ingest", str(SEED), "--json")[1])
    assert first["ingested"] == 1 and first["chunks"] > 50
    assert (second["ingested"], second["skipped"], second["chunks"]) == (0, 1, 0)
