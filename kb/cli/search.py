"""Reading: search and ask (through a running `kb serve` when there is one: kb/cli/remote.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kb.cli import remote
from kb.cli.common import emit, settings
from kb.cli.output import snippet
from kb.errors import KBError
from kb.models import AskResponse, SearchResponse
from kb.search.methods import METHODS as SEARCH_METHODS
from kb.settings import Settings

API_TOP_K = 100  # the server's limit; deeper searches run in-process


@click.command()
@click.argument("query", required=False)
@click.option("--top-k", "-k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Restrict hits: kind, source, section (heading-path prefix), year, field, doc_id.")
@click.option("--batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL file of {id, text}; prints one JSON result per line.")
@click.option("--method", type=click.Choice(SEARCH_METHODS), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(query: str | None, top_k: int, filters: tuple[str, ...], batch: Path | None, method: str,
           as_json: bool) -> None:
    """Hybrid (dense + BM25) search in Chinese or English.

    With a `kb serve` of this KB_HOME running (or KB_URL set) the server answers, without loading the model here.
    """
    from kb.search.filters import parse_pairs

    if (query is None) == (batch is None):
        raise click.UsageError("give either QUERY or --batch FILE")
    s = settings()
    flt = parse_pairs(list(filters))
    if batch is not None:
        from kb.search.hybrid import Searcher

        _search_batch(Searcher(s), batch, top_k, flt, method)
        return
    res = _search(s, query or "", top_k, flt, method)
    if as_json:
        emit(res.model_dump())
        return
    _print_hits(res)
    if not res.hits:
        click.echo(_why_empty(s, query or "", flt))


def _search(s: Settings, query: str, top_k: int, flt: dict[str, str], method: str) -> SearchResponse:
    """The server's answer when there is a server, else the same search in this process."""
    if top_k <= API_TOP_K:
        body = {"query": query, "top_k": top_k, "filters": flt, "method": method}
        if (data := remote.call(s, "/search", body)) is not None:
            return SearchResponse.model_validate(data)
    from kb.search.hybrid import Searcher

    return Searcher(s).search(query, top_k=top_k, filters=flt, method=method)


def _why_empty(s: Settings, query: str, flt: dict[str, str]) -> str:
    """Filters that emptied the list are named; otherwise nothing in the index is relevant."""
    if flt and _search(s, query, 1, {}, "hybrid").hits:
        shown = ", ".join(f"{k}={v}" for k, v in flt.items())
        return f"筛选条件（{shown}）下没有结果；去掉 --filter 后有相关内容。"
    return "知识库中没有相关内容（no relevant result）：换个说法，或检查错别字。"


def _search_batch(searcher: Any, batch: Path, top_k: int, flt: dict[str, str], method: str) -> None:
    for n, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            res = searcher.search(str(item["text"]), top_k=top_k, filters=flt, method=method)
            emit({"id": item.get("id"), **res.model_dump()})
        except (ValueError, KeyError, TypeError) as exc:
            emit({"id": None, "line": n, "error": f"bad input line: {exc}"})
        except KBError as exc:
            emit({"id": item.get("id"), "line": n, "error": exc.message})


def _print_hits(res: SearchResponse) -> None:
    click.echo(f"{len(res.hits)} hits for {res.query!r} in {res.took_ms:.0f} ms")
    for n, h in enumerate(res.hits, start=1):
        where = h.section + (f" (p.{h.page})" if h.page else "")
        click.echo(f"\n{n}. [{h.kind}] {h.title} — {where}  score {h.score:.3f}  id {h.doc_id}")
        click.echo("   " + snippet(h.highlighted or h.text))


@click.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ask(question: str, as_json: bool) -> None:
    """Answer a question from the knowledge base, citing the sentences it comes from.

    With KB_LLM_BASE_URL and KB_LLM_MODEL set, an OpenAI-compatible model writes the
    answer from the same passages; if it fails, the extractive answer is given with a warning.
    A running `kb serve` (or KB_URL) answers when there is one.
    """
    s = settings()
    data = remote.call(s, "/ask", {"question": question})
    if data is not None:
        res = AskResponse.model_validate(data)
    else:
        from kb.search.ask import Asker

        res = Asker(s).ask(question)
    if as_json:
        emit(res.model_dump())
        return
    _print_answer(res)


def _print_answer(res: AskResponse) -> None:
    english = res.language == "en"
    click.echo(("Answer: " if english else "答案：") if res.found else ("Not found: " if english else "未找到："), nl=False)
    click.echo(res.answer)
    for note in res.notes:
        click.echo(f"({note})")
    for n, c in enumerate(res.citations, start=1):
        where = c.section + (f"（第 {c.page} 页）" if c.page else "")
        text = snippet(c.highlighted, limit=600) if c.highlighted else c.text
        click.echo(f"\n[{n}] {c.title} — {where}  ({c.doc_id})\n    {text}")
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)


COMMANDS = [search, ask]
