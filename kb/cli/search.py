"""Reading: search and ask."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import click

from kb.cli.common import emit, settings
from kb.errors import KBError
from kb.models import SearchResponse
from kb.search.methods import METHODS as SEARCH_METHODS


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
    """Hybrid (dense + BM25) search in Chinese or English."""
    from kb.search.filters import parse_pairs
    from kb.search.hybrid import Searcher

    if (query is None) == (batch is None):
        raise click.UsageError("give either QUERY or --batch FILE")
    searcher = Searcher(settings())
    flt = parse_pairs(list(filters))
    if batch is not None:
        _search_batch(searcher, batch, top_k, flt, method)
        return
    res = searcher.search(query or "", top_k=top_k, filters=flt, method=method)
    if as_json:
        emit(res.model_dump())
    else:
        _print_hits(res)


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
        text = h.highlighted.replace("<mark>", "\x1b[1;33m").replace("</mark>", "\x1b[0m")
        click.echo("   " + html.unescape(text)[:300])


@click.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ask(question: str, as_json: bool) -> None:
    """Answer a question from the knowledge base, citing the sentences it comes from.

    With KB_LLM_BASE_URL and KB_LLM_MODEL set, an OpenAI-compatible model writes the
    answer from the same passages; if it fails, the extractive answer is given with a warning.
    """
    from kb.search.ask import Asker

    res = Asker(settings()).ask(question)
    if as_json:
        emit(res.model_dump())
        return
    click.echo(("答案：" if res.found else "未找到：") + res.answer)
    for n, c in enumerate(res.citations, start=1):
        where = c.section + (f"（第 {c.page} 页）" if c.page else "")
        click.echo(f"\n[{n}] {c.title} — {where}  ({c.doc_id})\n    {c.text}")
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)




COMMANDS = [search, ask]
