"""Folder sync: keep the index in step with a folder (new files in, changed files replaced, gone files out).

One sync is one ``kb.ingest.pipeline.ingest`` write: the folder's supported files, plus (with ``delete``)
the sources under the folder whose file is gone, in one generation. So it has ingest's crash guarantees
(a killed sync is finished or rolled back by the next write, and a re-run ends where a clean sync
does) and its skipping (an unchanged file is hashed, not re-read). The last sync's summary is a JSON
file under KB_HOME, which ``GET /sync/last`` serves.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from kb.errors import BadInputError, WriterBusyError
from kb.index.lock import write_lock
from kb.index.manifest import Manifest
from kb.ingest.files import expand
from kb.ingest.pipeline import SUPPORTED, Progress, ingest
from kb.models import FailedItem
from kb.settings import Settings

LAST = "last.json"
log = logging.getLogger("kb.ingest")


class SyncSummary(BaseModel):
    """What one sync did; files are named relative to the folder (the ``kb sync --json`` shape)."""

    root: str = Field(description="the synced folder (absolute)")
    delete: bool = Field(description="whether documents of gone files were removed (--delete)")
    files: int = Field(description="supported files in the folder")
    added: list[str] = Field(default_factory=list, description="files indexed for the first time")
    changed: list[str] = Field(default_factory=list, description="files whose documents were replaced")
    unchanged: int = 0
    removed: list[str] = Field(default_factory=list, description="gone files whose documents were removed")
    missing: list[str] = Field(default_factory=list, description="gone files still indexed (no --delete)")
    ignored: list[str] = Field(default_factory=list, description="files of a type no reader takes")
    failed: list[FailedItem] = Field(default_factory=list)
    ingested: int = Field(0, description="documents written")
    skipped: int = Field(0, description="documents unchanged")
    deleted: int = Field(0, description="documents removed")
    chunks: int = Field(0, description="chunks written")
    started_at: float
    finished_at: float
    took_s: float


def scan(root: Path, settings: Settings) -> tuple[list[Path], list[Path]]:
    """(supported files, other files) in ``root``, with ingest's rules (hidden and .kbignore'd files skipped).

    The index's own folder is never content, and neither are Office's ``~$`` lock files.
    """
    home = settings.home.resolve()
    files: list[Path] = []
    ignored: list[Path] = []
    for f in expand([root]):
        if f.resolve().is_relative_to(home) or f.name.startswith("~$"):
            continue
        (files if f.suffix.lower() in SUPPORTED else ignored).append(f)
    return files, ignored


def _rel(root: Path, key: str) -> str:
    return Path(key).relative_to(root).as_posix()


def sync(root: Path, settings: Settings, *, delete: bool = False, progress: Progress | None = None) -> SyncSummary:
    """Bring the index in step with ``root``; the summary is also saved as the last sync's."""
    if not root.is_dir():
        raise BadInputError(f"{root}: not a folder")
    root, home = root.resolve(), settings.home.resolve()
    start = time.time()
    with write_lock(settings.home):  # the hashes before and after are this write's, not another writer's
        files, ignored = scan(root, settings)
        keys = {str(f.resolve()): f for f in files}
        before, indexed = _indexed(root, settings)
        gone = sorted(s for s in indexed if s not in keys and not Path(s).is_relative_to(home))
        report = ingest(files, settings, progress=progress, remove=gone if delete else ())
        after, _ = _indexed(root, settings)
    failed = {f.path for f in report.failed}
    added, changed, unchanged = _classify(root, keys, before, after, failed)
    gone_rel = [_rel(root, s) for s in gone]
    summary = SyncSummary(
        root=str(root), delete=delete, files=len(files), added=added, changed=changed, unchanged=unchanged,
        removed=gone_rel if delete else [], missing=[] if delete else gone_rel,
        ignored=sorted(f.relative_to(root).as_posix() for f in ignored), failed=report.failed,
        ingested=report.ingested, skipped=report.skipped, deleted=report.deleted, chunks=report.chunks,
        started_at=start, finished_at=time.time(), took_s=round(time.time() - start, 3))
    save_last(summary, settings)
    return summary


def _classify(root: Path, keys: dict[str, Path], before: dict[str, str], after: dict[str, str],
              failed: set[str]) -> tuple[list[str], list[str], int]:
    """(added, changed, unchanged count) from the file hashes the index held before and after the write."""
    added, changed, unchanged = [], [], 0
    for key, path in sorted(keys.items()):
        name = path.relative_to(root).as_posix()
        if key not in after:  # never indexed: it failed (the report says why)
            continue
        if key not in before:
            added.append(name)
        elif after[key] != before[key]:
            changed.append(name)
        elif str(path) not in failed:  # a changed file that failed to read keeps its old hash
            unchanged += 1
    return added, changed, unchanged


def _indexed(root: Path, settings: Settings) -> tuple[dict[str, str], list[str]]:
    """({file: hash} and every indexed source) inside ``root``."""
    m = Manifest(settings.manifest_path)
    try:
        return m.files_under(str(root)), m.sources_under(str(root))
    finally:
        m.close()


def save_last(summary: SyncSummary, settings: Settings) -> None:
    """Write the summary atomically (a reader never sees half a file)."""
    folder = settings.home / "sync"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{LAST}.{os.getpid()}"
    tmp.write_text(summary.model_dump_json(), encoding="utf-8")
    os.replace(tmp, folder / LAST)


def last(settings: Settings) -> SyncSummary | None:
    """The last sync's summary, if any sync has finished under this KB_HOME."""
    path = settings.home / "sync" / LAST
    if not path.exists():
        return None
    return SyncSummary.model_validate(json.loads(path.read_text(encoding="utf-8")))


def _relevant(settings: Settings) -> Callable[[Any, str], bool]:
    """Events worth a sync: not in the index's own folder, not hidden, not an Office lock file."""
    home = settings.home.resolve()

    def keep(_change: Any, path: str) -> bool:
        p = Path(path)
        return not p.resolve().is_relative_to(home) and not any(
            part.startswith(".") for part in p.parts[1:]) and not p.name.startswith("~$")

    return keep


def watch(root: Path, settings: Settings, *, delete: bool, on_sync: Callable[[SyncSummary], None],
          quiet_s: float = 2.0, stop: threading.Event | None = None, tick_s: float = 1.0) -> None:
    """Sync, then again after every burst of file events (once ``quiet_s`` pass without one).

    watchfiles (Rust ``notify``: inotify, FSEvents, ReadDirectoryChangesW, or polling on network shares)
    rather than watchdog: it is already installed with uvicorn and groups a burst of events itself.
    The first sync runs once the watcher is live, so a file added during it is not missed; a sync refused
    because another writer is busy is retried every ``tick_s``.
    """
    import watchfiles

    pending = True
    for changes in watchfiles.watch(root, watch_filter=_relevant(settings), step=int(quiet_s * 1000),
                                    debounce=max(int(quiet_s * 1000), 30_000), stop_event=stop,
                                    rust_timeout=int(tick_s * 1000), yield_on_timeout=True):
        if not (changes or pending):
            continue
        try:
            on_sync(sync(root, settings, delete=delete))
            pending = False
        except WriterBusyError as exc:
            log.warning("sync of %s postponed: %s", root, exc.message)
            pending = True
