"""Writing and keeping the index: ingest, delete, stats, check."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kb.cli.common import announce_model_build, compact, emit, progress, settings
from kb.models import KINDS, IngestReport


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), help="Kind of every document (default: from folder, column or file type).")
@click.option("--replace", is_flag=True, help="A record may replace a document of another source that has its id.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[Path, ...], kind: str | None, replace: bool, as_json: bool, quiet: bool) -> None:
    """Ingest files and folders (txt, md, html, docx, doc, pptx, pdf, csv, xlsx, xls, jsonl).

    Unchanged files are skipped; changed files replace their old chunks. Files that
    fail are listed with the reason, the rest are ingested, and the exit code is 1.
    A record (table row, JSONL line) whose id belongs to a document of another file
    fails, unless --replace; each replacement is listed. A file of more than
    KB_MAX_FILE_CHUNKS passages fails. While another writer holds the index it
    refuses at once (exit 2); an earlier interrupted ingest is finished or rolled
    back first.
    """
    from kb.ingest.pipeline import ingest as run

    s = settings()
    announce_model_build(s)
    bar = progress(quiet, "ingest", "embedding and writing the last batch, then the search index…")
    notify = None if quiet or as_json else (lambda line: click.echo(line, err=True))
    started = time.time()
    report = run(list(paths), s, kind=kind, progress=bar, notify=notify, replace=replace)
    compacted = compact(s)
    if s.webhook_url and report.ingested:  # new-arrival notices (docs/MARKET.md); a failed delivery is retried later
        from kb.integrations.webhook import notify_new

        sent = notify_new(s, since=started)
        if not as_json and (sent["sent"] or sent["pending"]):
            click.echo(f"webhook: {sent['sent']} new-arrival notices sent, {sent['pending']} not delivered", err=True)
    if as_json:
        emit(report.model_dump(include={"ingested", "skipped", "chunks", "failed", "deleted", "replaced"}))
    else:
        _print_report(report)
        if compacted:
            click.echo(compacted)
    if report.failed:
        sys.exit(1)


def _print_report(r: IngestReport) -> None:
    for x in r.replaced:
        click.echo(f"replaced: {x.doc_id} ({x.kind} «{x.title}» from {x.source}) by a record of {x.by}")
    for f in r.failed:  # errors first: a summary line above them reads as success
        click.echo(f"failed: {f.error}", err=True)
    click.echo(f"ingested {r.ingested} documents ({r.chunks} chunks), skipped {r.skipped} unchanged"
               + (f", removed {r.deleted}" if r.deleted else "")
               + (f"; {len(r.failed)} failed" if r.failed else ""))


@click.command()
@click.option("--json", "as_json", is_flag=True)
def stats(as_json: bool) -> None:
    """Counts of documents and chunks in the index."""
    from kb.index.manifest import Manifest

    s = settings()
    m = Manifest(s.manifest_path)
    st = m.stats()
    m.close()
    if as_json:
        emit(st.model_dump())
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in st.by_kind.items())
        click.echo(f"{st.documents} documents ({kinds or 'none'}), {st.chunks} chunks; model {st.embed_model}; home {s.home}")
        if st.ocr_chunks:
            click.echo(f"{st.ocr_chunks} chunks recognised by OCR")
        for d in st.duplicates:
            click.echo(f"{d.doc_id}: possible duplicate of {d.duplicate_of} ({d.similarity:.0%} shared text)")


@click.command()
@click.argument("doc_id")
@click.option("--json", "as_json", is_flag=True)
def delete(doc_id: str, as_json: bool) -> None:
    """Remove a document and all its chunks from every index.

    Like ingest, it refuses at once (exit 2) while another writer holds the index.
    """
    from kb.ingest.pipeline import delete as run

    s = settings()
    n = run(doc_id, s)
    compacted = compact(s)
    if as_json:
        emit({"deleted": doc_id, "chunks": n})
    else:
        click.echo(f"deleted {doc_id} ({n} chunks)")
        if compacted:
            click.echo(compacted)


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"ok", "documents", "chunks", "problems", ...}.')
@click.option("--repair", is_flag=True, help="First finish or roll back an interrupted write, drop orphan vectors, rebuild BM25, "
              "compact a vector store mostly made of deleted vectors.")
def check(as_json: bool, repair: bool) -> None:
    """Check that the manifest, Chroma and BM25 hold the same chunks and SQLite is sound.

    Compares chunk ids, not counts, and reports a vector store mostly made of deleted
    vectors (KB_COMPACT_SHARE, else half; --repair compacts it). Exit code 1 when a problem remains; it takes the writer
    lock, so it refuses (exit 2) while an ingest or delete is running.
    """
    from kb.index.check import check as run

    rep = run(settings(), repair=repair)
    if as_json:
        emit(rep.to_dict())
    else:
        for line in rep.repaired:
            click.echo(f"repaired: {line}")
        state = "ok" if rep.ok else f"NOT OK, {len(rep.problems)} problems"
        stored = "" if rep.stored is None else f" ({rep.stored} stored, deleted ones included)"
        click.echo(f"{state}: {rep.documents} documents, {rep.chunks} chunks; "
                   f"Chroma {rep.vectors} vectors{stored}, BM25 {rep.bm25} rows; generation {rep.published_gen}")
        for p in rep.problems:
            click.echo(f"problem: {p}")
    if not rep.ok:
        sys.exit(1)



COMMANDS = [ingest, stats, delete, check]
