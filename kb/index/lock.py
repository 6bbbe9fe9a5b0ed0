"""The writer lock: one writer per KB_HOME at a time, across processes and threads.

An advisory ``flock`` on ``KB_HOME/.write.lock``. The kernel drops it when its holder dies, even by
``kill -9``, so a crashed writer never leaves a stale lock behind. Each acquisition opens its own
file description, so two threads of one process exclude each other too; a thread that already
holds the lock may take it again (nested ``write_lock``), so the write path can lock for itself
while the CLI or the API job around it holds the lock already.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kb.errors import WriterBusyError

LOCK_NAME = ".write.lock"
_POLL_S = 0.05
_held = threading.local()  # per thread: resolved home -> nesting depth


def lock_path(home: Path) -> Path:
    return home / LOCK_NAME


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    return _held.depths  # type: ignore[no-any-return]


def holds_lock(home: Path) -> bool:
    """Whether this thread holds the writer lock of ``home``."""
    return _depths().get(str(home.resolve()), 0) > 0


def _holder(fh: object) -> str:
    """Who holds the lock, as its holder wrote it (best effort: the file may be mid-write)."""
    try:
        text = Path(getattr(fh, "name", "")).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text[:200]


def _announce(fd: int) -> None:
    """Write our pid and command into the lock file, so a refused writer can say who is busy."""
    who = f"pid {os.getpid()}: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])[:150]}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, who.encode("utf-8", errors="replace"), 0)


def _busy_message(home: Path, holder: str) -> str:
    by = f" ({holder})" if holder else ""
    return f"another writer{by} is updating the index in {home}; wait for it to finish, then retry"


@contextmanager
def write_lock(home: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the writer lock of ``home``; WriterBusyError if another writer keeps it past ``wait_s``."""
    home.mkdir(parents=True, exist_ok=True)
    key = str(home.resolve())
    depths = _depths()
    if depths.get(key, 0) > 0:
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    with open(lock_path(home), "a+b") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriterBusyError(_busy_message(home, _holder(fh))) from None
                time.sleep(_POLL_S)
        depths[key] = 1
        try:
            _announce(fh.fileno())
            yield
        finally:
            depths.pop(key, None)
            fcntl.flock(fh, fcntl.LOCK_UN)
