"""The kb CLI contract: JSON fields, exit codes, batch mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from kb.cli import main
from kb.settings import Settings, env_name
from tests.utils import ROOT, SEED


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


def _readme_settings() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Settings"):readme.index("## How it works")]
    return set(re.findall(r"`(KB_[A-Z0-9_]+)`", section))


def test_readme_and_help_list_every_setting() -> None:
    """The settings table and `kb --help` cannot drift from kb/settings.py."""
    fields = {env_name(n) for n in Settings.model_fields}
    assert _readme_settings() == fields
    code, out, _ = _run("--help")
    assert code == 0 and [v for v in sorted(fields) if v not in out] == []


def test_plain_text_is_a_document_and_keeps_its_kind_without_kind(tmp_path: Path, settings: Settings) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "memo.txt").write_text("煤层气井排采记录\n\n第一口井日产气量稳定。", encoding="utf-8")
    (notes / "plan.txt").write_text("沁水县科技发展规划\n\n第一章 总体要求\n\n内容一。\n\n第二章 重点任务\n\n内容二。",
                                    encoding="utf-8")
    assert _run("ingest", str(notes), "--json")[0] == 0
    kinds = {r["doc_id"]: r["kind"] for r in _page(settings)}
    assert kinds == {"memo": "document", "plan": "plan"}  # the plan by its title and chapters
    assert json.loads(_run("ingest", str(notes / "memo.txt"), "--kind", "paper", "--json")[1])["ingested"] == 1
    (notes / "memo.txt").write_text("煤层气井排采记录\n\n第一口井日产气量稳定。第二口井见气。", encoding="utf-8")
    assert json.loads(_run("ingest", str(notes / "memo.txt"), "--json")[1])["ingested"] == 1
    assert {r["doc_id"]: r["kind"] for r in _page(settings)}["memo"] == "paper"  # changed text, kind kept


def _page(settings: Settings) -> list[dict[str, object]]:
    from kb.index.manifest import Manifest

    m = Manifest(settings.manifest_path)
    try:
        return m.page_documents(None, "", 100)[1]
    finally:
        m.close()
