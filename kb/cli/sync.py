"""Keeping the index in step with a folder: sync (once, or on every change with --watch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kb.cli.common import compact, emit, progress, settings

if TYPE_CHECKING:
    from kb.ingest.sync import SyncSummary


def _print(s: SyncSummary) -> None:
    gone = f", removed {len(s.removed)}" if s.delete else f", {len(s.missing)} gone but kept (use --delete)"
    click.echo(f"{s.root}: {len(s.added)} added, {len(s.changed)} changed, {s.unchanged} unchanged{gone}; "
               f"{s.ingested} documents written ({s.chunks} chunks), {s.deleted} removed, in {s.took_s:.1f} s")
    for f in s.failed:
        click.echo(f"failed: {f.error}", err=True)


@click.command("sync")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--delete", is_flag=True, help="Remove documents whose file is no longer in the folder.")
@click.option("--watch", is_flag=True, help="Keep running: sync again after every burst of file changes.")
@click.option("--debounce", default=2.0, show_default=True, type=click.FloatRange(0.05, 600),
              help="With --watch: seconds without a change before a sync starts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (one line per sync with --watch).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sync(folder: Path, delete: bool, watch: bool, debounce: float, as_json: bool, quiet: bool) -> None:
    """Bring the index in step with FOLDER: new files in, changed files replaced.

    Unchanged files are skipped; with --delete, documents of files that left the folder
    are removed in the same write. An interrupted sync is finished or rolled back by the
    next one, as for ingest. The summary is kept under KB_HOME (GET /sync/last). Exit code
    1 when a file failed; while another writer holds the index it refuses at once (exit 2),
    except with --watch, which retries.
    """
    from kb.ingest import sync as folder_sync

    s = settings()

    def report(summary: SyncSummary) -> None:
        compacted = compact(s) if summary.deleted or summary.changed else None  # files gone leave dead vectors
        if as_json:
            emit(summary.model_dump())
        else:
            _print(summary)
            if compacted:
                click.echo(compacted)
        sys.stdout.flush()

    if watch:
        folder_sync.watch(folder, s, delete=delete, on_sync=report, quiet_s=debounce)
        return
    summary = folder_sync.sync(folder, s, delete=delete, progress=progress(quiet, "sync"))
    report(summary)
    if summary.failed:
        sys.exit(1)


COMMANDS = [sync]
