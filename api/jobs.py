"""Background ingest jobs: one writer thread per process, kb.index.lock's file lock across processes.

Job records are JSON files under KB_HOME/jobs/, so any worker process can report on any job.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from api.errors import BusyError
from api.uploads import Stored
from kb.errors import KBError, NotFoundError, WriterBusyError
from kb.index import lock as kb_lock
from kb.index.recovery import recover_if_needed
from kb.ingest.pipeline import delete, ingest
from kb.models import FailedItem, IngestReport
from kb.settings import Settings

log = logging.getLogger("kb.api")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class Job(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed"] = "queued"
    progress: float = Field(default=0.0, description="share of files processed, 0 to 1")
    files: list[str] = Field(default_factory=list, description="the client's file names")
    failed: list[FailedItem] = Field(default_factory=list)
    report: IngestReport | None = None
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    finished_at: float | None = None


def _client_view(item: FailedItem, names: dict[str, str]) -> FailedItem:
    """A failure as the client knows the file: its own name, not the server's path."""
    stored = Path(item.path).name
    name = names.get(item.path, stored)
    return FailedItem(path=name, error=item.error.replace(item.path, name).replace(stored, name))


@contextmanager
def write_lock(settings: Settings, wait_s: float) -> Iterator[None]:
    """kb.index.lock's writer lock, waiting up to ``wait_s``; BusyError (409 "busy") if it stays taken."""
    try:
        with kb_lock.write_lock(settings.home, wait_s):
            yield
    except WriterBusyError as exc:  # the API's own name and code for it, which clients already handle
        raise BusyError(exc.message) from None


def _recover_on_start(settings: Settings) -> None:
    """Finish or roll back a write that a crash interrupted, before serving (skipped while a writer runs)."""
    try:
        recover_if_needed(settings)  # logs what it repaired
    except (KBError, OSError, sqlite3.Error) as exc:  # e.g. a read-only KB_HOME: serve what is there
        log.warning("start-up recovery skipped: %s", getattr(exc, "message", exc))


class JobRunner:
    """Queues ingest jobs on one thread and records their state."""

    def __init__(self, settings: Settings, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self._on_change = on_change
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-ingest")
        self._lock = threading.Lock()
        self.delete_wait_s = 10.0
        settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        # first in the job queue, not before serving: reads are safe meanwhile (they see only the
        # published generation, as during any write), and at a million chunks the check alone took ~3 s
        self._pool.submit(_recover_on_start, settings)

    def submit(self, files: list[Stored], kind: str | None, rejected: list[FailedItem]) -> Job:
        job = Job(job_id=uuid.uuid4().hex, files=[f.name for f in files], failed=list(rejected))
        self._save(job)
        self._pool.submit(self._run, job, files, kind)
        return job

    def get(self, job_id: str) -> Job:
        path = self.settings.jobs_dir / f"{job_id}.json"
        if not _JOB_ID.match(job_id) or not path.exists():
            raise NotFoundError(f"no job with id {job_id!r}")
        return Job.model_validate_json(path.read_text(encoding="utf-8"))

    def delete_document(self, doc_id: str) -> int:
        """Delete now, unless a job holds the index longer than ``delete_wait_s`` (BusyError)."""
        with write_lock(self.settings, self.delete_wait_s):
            n = delete(doc_id, self.settings)
        self._on_change()
        return n

    def _run(self, job: Job, files: list[Stored], kind: str | None) -> None:
        names = {str(f.path): f.name for f in files}
        try:
            with write_lock(self.settings, wait_s=3600):
                job.status = "running"
                self._save(job)
                report = ingest([f.path for f in files], self.settings, kind=kind, progress=self._tracker(job))
            job.report = report
            job.failed += [_client_view(f, names) for f in report.failed]
            job.status = "done"
        except (KBError, OSError) as exc:
            job.status, job.error = "failed", getattr(exc, "message", str(exc))
        except Exception as exc:  # a bug must still end the job, not leave it "running" forever
            log.exception("ingest job %s crashed", job.job_id)
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
        job.progress, job.finished_at = 1.0, time.time()
        self._save(job)
        self._on_change()

    def _tracker(self, job: Job) -> Callable[[Iterable[Path]], Iterable[Path]]:
        def track(items: Iterable[Path]) -> Iterator[Path]:
            items = list(items)
            for n, item in enumerate(items):
                job.progress = round(n / max(len(items), 1), 3)
                self._save(job)
                yield item

        return track

    def _save(self, job: Job) -> None:
        with self._lock:
            path = self.settings.jobs_dir / f"{job.job_id}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(job.model_dump_json(), encoding="utf-8")
            os.replace(tmp, path)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
