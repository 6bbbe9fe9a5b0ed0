"""The writer lock: a second writer is refused at once with a clear message; a dead holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.errors import WriterBusyError
from kb.index.lock import holds_lock, write_lock
from kb.ingest.pipeline import delete, ingest
from kb.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time; from pathlib import Path; from kb.index.lock import write_lock\n"
        "with write_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)")


@pytest.fixture
def holder(kb_home: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding KB_HOME's writer lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(kb_home)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_second_writer_fails_fast_naming_the_holder(holder: subprocess.Popen[str], mini_corpus: Path,
                                                    settings: Settings) -> None:
    start = time.monotonic()
    with pytest.raises(WriterBusyError) as exc:
        ingest([mini_corpus], settings)
    assert time.monotonic() - start < 2
    assert f"pid {holder.pid}" in exc.value.message and str(settings.home) in exc.value.message
    assert (exc.value.code, exc.value.status) == ("writer_busy", 409)
    with pytest.raises(WriterBusyError):
        delete("horizontal", settings)


def test_cli_ingest_and_delete_refuse_with_one_line_and_exit_2(holder: subprocess.Popen[str], mini_corpus: Path) -> None:
    for args in (["ingest", str(mini_corpus), "--json"], ["delete", "horizontal"], ["check", "--json"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, args
        assert r.stdout == ""
        assert r.stderr.startswith(f"error: another writer (pid {holder.pid}: ") and r.stderr.count("\n") == 1


def test_kill_9_of_the_holder_frees_the_lock(holder: subprocess.Popen[str], kb_home: Path) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with write_lock(kb_home):
        assert holds_lock(kb_home)
    assert not holds_lock(kb_home)


def test_waiting_writer_gets_the_lock_once_it_is_free(kb_home: Path) -> None:
    """What the API's ingest job does: wait for the lock instead of failing."""
    held = threading.Event()

    def hold_briefly() -> None:
        with write_lock(kb_home):
            held.set()
            time.sleep(0.3)

    t = threading.Thread(target=hold_briefly)
    t.start()
    held.wait()
    with pytest.raises(WriterBusyError):
        with write_lock(kb_home, wait_s=0):
            pass
    with write_lock(kb_home, wait_s=10):
        assert holds_lock(kb_home)
    t.join()


def test_the_holding_thread_may_nest_the_lock(kb_home: Path) -> None:
    """The CLI or an API job holds the lock around the write path, which takes it again."""
    with write_lock(kb_home):
        with write_lock(kb_home):
            assert holds_lock(kb_home)
        assert holds_lock(kb_home)
    assert not holds_lock(kb_home)
