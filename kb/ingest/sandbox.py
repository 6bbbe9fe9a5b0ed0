"""Every parser runs in a child: ``python -m kb.ingest.sandbox_child SPEC`` reads a file's bytes on stdin and writes JSON lines.

A hostile file (a zip bomb, a PDF that loops, a table of a million rows) must never starve the process
that serves searches: a parser in a thread cannot be stopped, a child process can. The parent
(``run_reader``) gives the child a memory limit (``RLIMIT_AS``) and a time limit, kills its whole
process group past the limit (tools it started, such as antiword or tesseract, go too), and turns every
way the child can fail into one per-file ``ExtractionError``.

Protocol: the child (``sandbox_child --serve MEMORY_MB``, one per ingest, reused file after file) reads a JSON
line ``{"name", "ext", "ctx", "size"}`` and ``size`` bytes on stdin; stdout carries one JSON object per line:
``{"progress": {...}, "budget_s": s}`` while working (each line resets the time limit to ``budget_s``,
which is how OCR gets a per-page limit), then ``{"documents": [...], "errors": [...]}`` or ``{"error": msg}``.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kb.errors import ExtractionError
from kb.models import Document, Section

_ROOT = Path(__file__).resolve().parents[2]  # where the child finds this very kb package
Progress = Callable[[dict[str, Any]], None]


# ---- Documents as JSON (the child's answer) ---------------------------------------------------------------

def doc_to_json(doc: Document) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "kind": doc.kind, "title": doc.title, "source": doc.source, "meta": doc.meta,
            "sections": [[s.text, list(s.path), s.page, s.ocr, s.lookup] for s in doc.sections]}


def doc_from_json(obj: dict[str, Any]) -> Document:
    sections = [Section(t, tuple(p), page, bool(ocr), bool(lookup)) for t, p, page, ocr, lookup in obj["sections"]]
    return Document(obj["doc_id"], obj["kind"], obj["title"], obj["source"], sections, obj["meta"])


# ---- the parent side ----------------------------------------------------------------------------------------

_RECYCLE_AFTER = 500  # files one worker parses before a fresh one takes over (bounds what parsers leak)


class _Worker:
    """A long-lived child that parses one file after another (``sandbox_child --serve``).

    One child per file cost ~0.45 s of interpreter start and imports per file, more than embedding a short file;
    a worker pays it once. A file that fails, runs out of time or crashes the child ends this worker (whatever
    state the parser left goes with it), and the next file starts a fresh one.
    """

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb, self.files = memory_mb, 0
        self.proc = subprocess.Popen([sys.executable, "-m", "kb.ingest.sandbox_child", "--serve", str(memory_mb)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     cwd=_ROOT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None and self.files < _RECYCLE_AFTER

    def ask(self, spec: dict[str, Any], data: bytes, timeout_s: float,
            on_progress: Progress | None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.files += 1
        try:
            self.proc.stdin.write(json.dumps({**spec, "size": len(data)}).encode() + b"\n" + data)
            self.proc.stdin.flush()
        except OSError:  # the child is gone (killed from outside, or died between files)
            self.proc.wait()
            raise _WorkerDied(_crashed(spec["name"], self.proc.returncode)) from None
        return _read_answer(self.proc, spec["name"], timeout_s, on_progress)

    def close(self, graceful: bool = False) -> None:
        """Killed (a file failed in it), or with ``graceful`` told to end (its stdin closes) and killed after 2 s."""
        if graceful and self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _kill(self.proc)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()


_idle: list[_Worker] = []  # workers between files, at most one (parsing is sequential in each ingest)
_idle_lock = threading.Lock()


def _take_worker(memory_mb: int) -> _Worker:
    with _idle_lock:
        while _idle:
            w = _idle.pop()
            if w.alive() and w.memory_mb == memory_mb:
                return w
            w.close(graceful=True)
    return _Worker(memory_mb)


def _give_back(worker: _Worker) -> None:
    with _idle_lock:
        if not _idle and worker.alive():
            _idle.append(worker)
            return
    worker.close(graceful=True)


@atexit.register
def close_workers() -> None:
    """End the idle parser worker (at exit; tests that count child processes call it first)."""
    with _idle_lock:
        while _idle:
            _idle.pop().close(graceful=True)


class _WorkerDied(ExtractionError):
    """The child ended while parsing (killed from outside, a crash, out of memory)."""


def run_reader(name: str, data: bytes, ctx: dict[str, Any], *, timeout_s: float, memory_mb: int,
               on_progress: Progress | None = None) -> tuple[list[Document], list[str]]:
    """The documents and per-row errors of one file, parsed in a killable child with time and memory limits.

    A worker that had parsed other files and then died or ran out of memory gets the file again in a fresh
    worker: what earlier files left in its heap must not fail this one."""
    spec = {"name": name, "ext": Path(name).suffix.lower(), "ctx": ctx, "memory_mb": memory_mb}
    worker = _take_worker(memory_mb)
    reused = worker.files > 0
    try:
        result = worker.ask(spec, data, timeout_s, on_progress)
    except _WorkerDied:
        worker.close()
        if reused:
            return run_reader(name, data, ctx, timeout_s=timeout_s, memory_mb=memory_mb, on_progress=on_progress)
        raise
    except BaseException:
        worker.close()
        raise
    if "error" in result:
        worker.close()
        if reused and "KB_PARSE_MEMORY_MB" in result["error"]:
            return run_reader(name, data, ctx, timeout_s=timeout_s, memory_mb=memory_mb, on_progress=on_progress)
        raise ExtractionError(f"{name}: {result['error']}")
    _give_back(worker)
    return [doc_from_json(d) for d in result["documents"]], [str(e) for e in result["errors"]]


def _read_answer(proc: subprocess.Popen[bytes], name: str, timeout_s: float,
                 on_progress: Progress | None) -> dict[str, Any]:
    """Lines from the child until its answer; progress lines move the deadline, silence past it kills."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        return _answer(proc, sel, name, timeout_s, on_progress)


def _answer(proc: subprocess.Popen[bytes], sel: selectors.BaseSelector, name: str, timeout_s: float,
            on_progress: Progress | None) -> dict[str, Any]:
    assert proc.stdout is not None
    buf, deadline, budget = b"", time.monotonic() + timeout_s, timeout_s
    stage = "parsing"
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise ExtractionError(_too_slow(name, stage, budget))
        chunk = os.read(proc.stdout.fileno(), 1 << 20)
        if not chunk:
            proc.wait()
            raise _WorkerDied(_crashed(name, proc.returncode))
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "progress" not in msg:
                return dict(msg)
            budget = float(msg.get("budget_s", timeout_s))
            deadline, stage = time.monotonic() + budget, str(msg["progress"].get("stage", stage))
            if on_progress is not None:
                on_progress(msg["progress"])


def _too_slow(name: str, stage: str, budget: float) -> str:
    if stage == "ocr":
        return f"{name}: OCR of one page took longer than {budget:g} s and was stopped (KB_OCR_PAGE_TIMEOUT_S)"
    return (f"{name}: parsing took longer than {budget:g} s and was stopped (KB_PARSE_TIMEOUT_S); "
            "the file may be malformed or too large")


def _crashed(name: str, code: int | None) -> str:
    if code is not None and code < 0 and -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
        return f"{name}: the parser was killed ({signal.Signals(-code).name}); the file may need more memory " \
               "than KB_PARSE_MEMORY_MB allows, or be malformed"
    return f"{name}: the parser crashed (exit code {code})"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The child and everything it started (its own process group), reaped."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
