"""Word 97-2003 (.doc) through Debian's antiword: small, reads Chinese Word 97 files as UTF-8 text.

antiword rather than catdoc (which leaks field codes such as ``HYPERLINK`` and ``TOC \\o`` into the text)
or LibreOffice (hundreds of MB and seconds per file to start). The .xls reader is xlrd, in tables.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, parse_structure
from kb.ingest.readers.text import require_text
from kb.models import Section

_ANTIWORD_TIMEOUT_S = 300  # the sandbox's own time limit stops it sooner; this only bounds a stray child


def doc_text(data: bytes, name: str) -> str:
    """The text of a Word 97-2003 document (antiword, UTF-8 mapping, no line wrapping)."""
    exe = shutil.which("antiword")
    if exe is None:
        raise ExtractionError(f"{name}: reading .doc needs Debian's antiword (make install-tools)")
    with tempfile.NamedTemporaryFile(suffix=".doc") as f:  # antiword seeks in its input: it wants a file
        f.write(data)
        f.flush()
        proc = subprocess.run([exe, "-m", "UTF-8.txt", "-w", "0", f.name], capture_output=True,
                              timeout=_ANTIWORD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise ExtractionError(f"{name}: not a readable Word 97-2003 file ({why[0].removeprefix(f.name).strip(': ')})")
    return proc.stdout.decode("utf-8", "replace")


def read_doc(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a .doc file."""
    text = doc_text(data, name)
    return guess_title(text), require_text(parse_structure(text), name)
