"""Background jobs: one writer thread per process, kb.index.lock's file lock across processes.

Uploads are ingested by a job; so is the deletion of a large document (KB_DELETE_SYNC_CHUNKS), and a
compaction of the vector store follows any write that left too many deleted vectors (KB_COMPACT_SHARE).
Job records are JSON files under KB_HOME/jobs/, so any worker process can report on any job; they name
files as the client named them, never by a server path.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from fastapi import UploadFile
from pydantic import BaseModel, Field

from api import uploads
from api.errors import BusyError, TooManyFilesError, without_paths
from api.reports import public_report
from api.uploads import Stored
from kb.errors import KBError, NotFoundError, UnsupportedFileError, WriterBusyError
from kb.index import bm25_files
from kb.index import lock as kb_lock
from kb.index.compact import compact_if_bloated
from kb.index.manifest import Manifest
from kb.index.recovery import recover_if_needed
from kb.ingest.guards import JobLimits
from kb.ingest.pipeline import delete, ingest
from kb.models import FailedItem, IngestReport
from kb.settings import Settings

log = logging.getLogger("kb.api")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
Marks = tuple[float, float]  # the BM25 marker before and after a write of this process
OnChange = Callable[[Marks | None], None]


class Job(BaseModel):
    job_id: str
    task: Literal["ingest", "delete"] = Field(default="ingest", description="ingest an upload, or delete a large document")
    status: Literal["queued", "running", "done", "failed"] = "queued"
    progress: float = Field(default=0.0, description="share of files (or, deleting, of passages) processed, 0 to 1")
    files: list[str] = Field(default_factory=list, description="the client's file names")
    doc_id: str | None = Field(default=None, description="the document a delete job removes")
    chunks: int | None = Field(default=None, description="passages the delete job removes")
    failed: list[FailedItem] = Field(default_factory=list)
    report: IngestReport | None = None
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    finished_at: float | None = None


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


def _chunks_of(settings: Settings, doc_id: str) -> int:
    """Passages of a published document; NotFoundError if there is none."""
    m = Manifest(settings.manifest_path)
    try:
        row = m.document(doc_id)
    finally:
        m.close()
    if row is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    return int(row["n_chunks"])


class JobRunner:
    """Queues jobs on one thread and records their state."""

    def __init__(self, settings: Settings, on_change: OnChange) -> None:
        self.settings = settings
        self._on_change = on_change
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-ingest")
        self._lock = threading.Lock()
        self._files = threading.Lock()  # storing uploads vs deleting ingested ones
        self._queued: Counter[Path] = Counter()  # stored files that queued jobs will read
        self._deleting: dict[str, str] = {}  # doc id -> its delete job
        self.delete_wait_s = 10.0
        settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        # first in the job queue, not before serving: reads are safe meanwhile (they see only the
        # published generation, as during any write), and at a million chunks the check alone took ~3 s
        self._pool.submit(_recover_on_start, settings)
        self._pool.submit(self._sweep_uploads)

    # ---- uploads --------------------------------------------------------------------------------

    def accept(self, files: list[UploadFile], kind: str | None, replace: bool) -> Job:
        """Store an upload's files and queue their ingest; the request's limits are checked first."""
        if len(files) > self.settings.max_upload_files:
            raise TooManyFilesError(f"{len(files)} files in one request, more than {self.settings.max_upload_files} "
                                    "(KB_MAX_UPLOAD_FILES); send them in several requests")
        with self._files:
            stored, rejected = uploads.save(files, self.settings.uploads_dir)
            if not stored:
                raise UnsupportedFileError("; ".join(f.error for f in rejected) or "no files")
            self._queued.update(f.path for f in stored)
        job = Job(job_id=uuid.uuid4().hex, files=[f.name for f in stored], failed=list(rejected))
        self._save(job)
        self._pool.submit(self._run_ingest, job, stored, kind, replace)
        return job

    def _run_ingest(self, job: Job, files: list[Stored], kind: str | None, replace: bool) -> None:
        names: dict[str, list[str]] = {}
        for f in files:  # identical files share one stored path: each keeps its own name
            names.setdefault(str(f.path), []).append(f.name)
        paths = list(dict.fromkeys(f.path for f in files))

        def work() -> None:
            report = ingest(paths, self.settings, kind=kind, progress=self._tracker(job), replace=replace,
                            limits=JobLimits.from_settings(self.settings))
            job.report = public_report(report, names, self.settings)
            job.failed += job.report.failed

        try:
            self._execute(job, work)
        finally:
            failed = {f.path for f in (job.report.failed if job.report else [])}
            ok = [p for p in paths if job.status == "done" and not set(names[str(p)]) & failed]
            self._release(paths, ok, since=job.created_at)
        self._pool.submit(self._compact)
        self._pool.submit(self._sweep_uploads)
        if self.settings.webhook_url and job.status == "done":
            self._pool.submit(self._notify, job.created_at)

    def _notify(self, since: float) -> None:
        """New-arrival notices of what this job stored (kb/integrations/webhook.py); a failure is logged, and what
        was not delivered goes with the next ingest's notices."""
        from kb.integrations.webhook import notify_new

        try:
            notify_new(self.settings, since)
        except Exception:
            log.exception("new-arrival notices failed")

    def _release(self, paths: list[Path], ingested: list[Path], since: float) -> None:
        """Forget this job's files; delete the ingested ones no queued job still needs (KB_KEEP_INGESTED_UPLOADS)."""
        with self._files:
            self._queued.subtract(paths)
            idle = [p for p in ingested if self._queued[p] <= 0]
            self._queued = +self._queued
            if not self.settings.keep_ingested_uploads:
                uploads.discard(idle, since)

    def _sweep_uploads(self) -> None:
        """Uploads older than KB_UPLOAD_KEEP_DAYS go (their name sidecars too once no document comes from them)."""
        def in_use(path: Path) -> bool:
            m = Manifest(self.settings.manifest_path)
            try:
                return bool(m.docs_from(str(path.resolve())))
            finally:
                m.close()

        with self._files:
            queued = set(self._queued)
            n = uploads.sweep(self.settings.uploads_dir, self.settings.upload_keep_days,
                              lambda p: p in queued or in_use(p))
        if n:
            log.info("deleted %d uploaded files older than %g days (KB_UPLOAD_KEEP_DAYS)", n,
                     self.settings.upload_keep_days)

    # ---- deletes --------------------------------------------------------------------------------

    def delete_document(self, doc_id: str) -> tuple[int, str | None]:
        """(passages, None) once deleted here and now; (passages, job id) when a job will delete it.

        A document of up to KB_DELETE_SYNC_CHUNKS passages is deleted at once, unless a job holds the
        index longer than ``delete_wait_s`` (BusyError); a larger one by a background job (one per document).
        """
        n = _chunks_of(self.settings, doc_id)
        if n <= self.settings.delete_sync_chunks:
            with write_lock(self.settings, self.delete_wait_s):
                before = self._mark()
                try:
                    n = delete(doc_id, self.settings)
                finally:
                    self._on_change((before, self._mark()))
            self._pool.submit(self._compact)
            return n, None
        with self._lock:
            if doc_id in self._deleting:
                return n, self._deleting[doc_id]
            job = Job(job_id=uuid.uuid4().hex, task="delete", doc_id=doc_id, chunks=n)
            self._deleting[doc_id] = job.job_id
        self._save(job)
        self._pool.submit(self._run_delete, job)
        return n, job.job_id

    def _run_delete(self, job: Job) -> None:
        doc_id = str(job.doc_id)

        def work() -> None:
            removed = delete(doc_id, self.settings, progress=self._tracker(job))
            job.report = IngestReport(deleted=1, chunks=removed)

        try:
            self._execute(job, work)
        finally:
            with self._lock:
                self._deleting.pop(doc_id, None)
        self._pool.submit(self._compact)

    # ---- running --------------------------------------------------------------------------------

    def _execute(self, job: Job, work: Callable[[], None]) -> None:
        """Run ``work`` under the writer lock and record how it ended; the searcher reopens after it."""
        marks: Marks | None = None
        try:
            with write_lock(self.settings, wait_s=3600):
                before = self._mark()
                job.status = "running"
                self._save(job)
                try:
                    work()
                finally:
                    marks = (before, self._mark())
            job.status = "done"
        except (KBError, OSError) as exc:
            job.status, job.error = "failed", without_paths(getattr(exc, "message", str(exc)), self.settings)
        except Exception as exc:  # a bug must still end the job, not leave it "running" forever
            log.exception("%s job %s crashed", job.task, job.job_id)
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
        job.progress, job.finished_at = 1.0, time.time()
        self._save(job)
        self._on_change(marks)

    def _compact(self) -> None:
        """Rebuild the vector store if the last write left too many deleted vectors in it (KB_COMPACT_SHARE)."""
        try:
            with write_lock(self.settings, wait_s=0):  # another process writing will look again itself
                before = self._mark()
                line = compact_if_bloated(self.settings)
                marks = (before, self._mark())
        except BusyError:
            return
        except Exception:  # a failed compaction leaves the old store in use: log it, keep serving
            log.exception("compaction of the vector store failed")
            return
        if line:
            self._on_change(marks)

    def _mark(self) -> float:
        return bm25_files.marker(self.settings.bm25_dir)

    def _tracker(self, job: Job) -> Callable[[Iterable[object]], Iterator[object]]:
        def track(items: Iterable[object]) -> Iterator[object]:
            items = list(items)
            for n, item in enumerate(items):
                job.progress = round(n / max(len(items), 1), 3)
                self._save(job)
                yield item

        return track

    def get(self, job_id: str) -> Job:
        path = self.settings.jobs_dir / f"{job_id}.json"
        if not _JOB_ID.match(job_id) or not path.exists():
            raise NotFoundError(f"no job with id {job_id!r}")
        job = Job.model_validate_json(path.read_text(encoding="utf-8"))
        if job.report is not None:  # records written before reports named files as clients do held server paths
            job.report.failed = [FailedItem(path=without_paths(f.path, self.settings),
                                            error=without_paths(f.error, self.settings)) for f in job.report.failed]
        return job

    def _save(self, job: Job) -> None:
        with self._lock:
            path = self.settings.jobs_dir / f"{job.job_id}.json"
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(job.model_dump_json(), encoding="utf-8")
            os.replace(tmp, path)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
