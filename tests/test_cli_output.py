"""What the kb command prints for a person: colour after the cut, errors before summaries, empty results explained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.cli.output import OFF, ON, snippet
from kb.ingest.pipeline import ingest
from kb.settings import Settings

LONG = "煤层气井排采要控制井底流压缓慢下降。" * 20  # 360 characters, a marked term every 18


def _balanced(line: str) -> bool:
    """Every colour switched on is switched off again, and no escape sequence is cut."""
    return line.count(ON) == line.count(OFF) and not re.search(r"\x1b(?:\[[0-9;]*)?$", line)


def test_snippet_cuts_the_text_then_colours_it() -> None:
    text = "a" * 295 + "<mark>井底流压</mark>" + "b" * 20
    out = snippet(text, limit=300)
    assert out == "a" * 295 + ON + "井底流压" + OFF + "b" + "…"
    assert _balanced(out) and len(out.replace(ON, "").replace(OFF, "")) == 301
    cut_in_mark = snippet("a" * 298 + "<mark>井底流压</mark>", limit=300)
    assert cut_in_mark == "a" * 298 + ON + "井底" + OFF + "…"
    assert snippet("x &amp; <mark>y&lt;</mark>", limit=10) == f"x & {ON}y<{OFF}"  # entities decoded, short: no "…"


def test_search_output_never_ends_inside_a_colour(tmp_path: Path, kb_home: Path) -> None:
    (tmp_path / "long.md").write_text(f"# 排采\n\n## 1. 制度\n{LONG}\n", encoding="utf-8")
    assert ingest([tmp_path / "long.md"], Settings(home=kb_home, chunk_size=1000, chunk_overlap=0)).failed == []
    r = CliRunner().invoke(main, ["search", "井底流压", "--top-k", "1"], color=True)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    text_line = next(line for line in lines if line.startswith("   "))
    assert ON in text_line and _balanced(text_line) and text_line.endswith("…")
    assert all(_balanced(line) for line in lines)


def test_ingest_prints_the_error_before_the_summary(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "no-such-folder")])
    assert r.exit_code == 1
    assert r.output.index("failed: ") < r.output.index("ingested 0 documents")
    assert r.output.rstrip().endswith("1 failed")


@pytest.fixture
def mini_home(mini_corpus: Path, kb_home: Path) -> Path:
    assert ingest([mini_corpus], Settings(home=kb_home)).failed == []
    return kb_home


def test_an_empty_result_says_whether_the_filters_emptied_it(mini_home: Path) -> None:
    r = CliRunner().invoke(main, ["search", "多分支水平井", "--filter", "kind=paper"])
    assert r.exit_code == 0 and r.stdout.startswith("0 hits")
    assert "筛选条件（kind=paper）下没有结果" in r.stdout


@pytest.mark.slow  # `kb ingest` in a process on a pseudo-terminal
def test_ingest_on_a_terminal_shows_its_progress(mini_corpus: Path, kb_home: Path) -> None:
    """A progress bar over the files, then a line for the silent part (embedding the last batch, BM25)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios

    from tests.utils import ROOT

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a width
    env = {**os.environ, "KB_HOME": str(kb_home), "KB_EMBED_MODEL": "hash"}
    proc = subprocess.run([sys.executable, "-m", "kb.cli", "ingest", str(mini_corpus)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=slave, timeout=120, text=True)
    os.close(slave)
    seen = b""
    ready = select.poll()  # not select(): it refuses a descriptor past 1024
    ready.register(master, select.POLLIN)
    while ready.poll(1000):
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    terminal = seen.decode("utf-8", "replace")
    assert proc.returncode == 0 and proc.stdout.startswith("ingested 4 documents")
    assert "ingest: 100%" in terminal and "4/4" in terminal
    assert "ingest: embedding and writing the last batch" in terminal


def test_only_a_server_on_this_machine_is_taken_from_kb_home(kb_home: Path) -> None:
    """KB_HOME/serve.json names the local `kb serve`; a file naming another host (or a dead process) is ignored."""
    import json
    import os

    from kb.cli.remote import SERVE_FILE, server_url

    kb_home.mkdir(parents=True, exist_ok=True)
    s = Settings(home=kb_home)
    assert server_url(s) is None
    (kb_home / SERVE_FILE).write_text(json.dumps({"url": "http://127.0.0.1:8123", "pid": os.getpid()}))
    assert server_url(s) == "http://127.0.0.1:8123"
    (kb_home / SERVE_FILE).write_text(json.dumps({"url": "http://203.0.113.9:8000", "pid": os.getpid()}))
    assert server_url(s) is None
    assert server_url(Settings(home=kb_home, url="off")) is None
    assert server_url(Settings(home=kb_home, url="http://10.0.0.5:8000/")) == "http://10.0.0.5:8000"  # asked for
