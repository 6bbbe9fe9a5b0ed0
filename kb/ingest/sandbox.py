"""Every parser runs in a child: ``python -m kb.ingest.sandbox_child SPEC`` reads a file's bytes on stdin and writes JSON lines.

A hostile file (a zip bomb, a PDF that loops, a table of a million rows) must never starve the process
that serves searches: a parser in a thread cannot be stopped, a child process can. The parent
(``run_reader``) gives the child a memory limit (``RLIMIT_AS``) and a time limit, kills its whole
process group past the limit (tools it started, such as antiword or tesseract, go too), and turns every
way the child can fail into one per-file ``ExtractionError``.

Protocol: argv[1] is a JSON object ``{"name", "ext", "ctx"}``; stdout carries one JSON object per line:
``{"progress": {...}, "budget_s": s}`` while working (each line resets the time limit to ``budget_s``,
which is how OCR gets a per-page limit), then ``{"documents": [...], "errors": [...]}`` or ``{"error": msg}``.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
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

def run_reader(name: str, data: bytes, ctx: dict[str, Any], *, timeout_s: float, memory_mb: int,
               on_progress: Progress | None = None) -> tuple[list[Document], list[str]]:
    """The documents and per-row errors of one file, parsed in a killable child with time and memory limits."""
    spec = json.dumps({"name": name, "ext": Path(name).suffix.lower(), "ctx": ctx, "memory_mb": memory_mb})
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as stdin:
        stdin.write(data)
        stdin.seek(0)
        proc = subprocess.Popen([sys.executable, "-m", "kb.ingest.sandbox_child", spec], stdin=stdin,
                                stdout=subprocess.PIPE, stderr=err, cwd=_ROOT, start_new_session=True)
        try:
            result = _read_answer(proc, name, timeout_s, on_progress)
        finally:
            _kill(proc)
    if "error" in result:
        raise ExtractionError(f"{name}: {result['error']}")
    return [doc_from_json(d) for d in result["documents"]], [str(e) for e in result["errors"]]


def _read_answer(proc: subprocess.Popen[bytes], name: str, timeout_s: float,
                 on_progress: Progress | None) -> dict[str, Any]:
    """Lines from the child until its answer; progress lines move the deadline, silence past it kills."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf, deadline, budget = b"", time.monotonic() + timeout_s, timeout_s
    stage = "parsing"
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise ExtractionError(_too_slow(name, stage, budget))
        chunk = os.read(proc.stdout.fileno(), 1 << 20)
        if not chunk:
            proc.wait()
            raise ExtractionError(_crashed(name, proc.returncode))
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
