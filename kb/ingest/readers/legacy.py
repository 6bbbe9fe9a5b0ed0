"""Word 97-2003 (.doc) through Debian's antiword: small, reads Chinese Word 97 files as UTF-8 text.

antiword rather than catdoc (which leaks field codes such as ``HYPERLINK`` and ``TOC \\o`` into the text)
or LibreOffice (hundreds of MB and seconds per file to start). antiword cannot read a document whose text
is under ~4 KB (stored in the OLE mini-stream); those go to catdoc, with its field codes removed.
The .xls reader is xlrd, in tables.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

from kb.errors import ExtractionError
from kb.ingest.plan import guess_title, parse_structure
from kb.ingest.readers.text import require_text
from kb.models import Section

_TOOL_TIMEOUT_S = 300  # the sandbox's own time limit stops it sooner; this only bounds a stray child
# Word field codes catdoc prints: HYPERLINK "url", PAGEREF _Toc123 \h, TOC \o "1-3" \h \z \u, \* MERGEFORMAT
FIELD_CODE = re.compile(r'\b(?:HYPERLINK|PAGEREF|REF|TOC|SEQ|INCLUDEPICTURE|EMBED|SHAPE|FORMTEXT|NUMPAGES|PAGE)\b'
                        r'(?:\s+(?:"[^"\n]*"|\\[*a-zA-Z]+|_Toc\d+|MERGEFORMAT|[A-Z][\w.]*))*')


def strip_field_codes(text: str) -> str:
    """catdoc's text without Word's field instructions (the visible results stay)."""
    return FIELD_CODE.sub("", text)


def _run(cmd: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    with tempfile.NamedTemporaryFile(suffix=".doc") as f:  # both tools seek in their input: they want a file
        f.write(data)
        f.flush()
        return subprocess.run([*cmd, f.name], capture_output=True, timeout=_TOOL_TIMEOUT_S, check=False)


def doc_text(data: bytes, name: str) -> str:
    """The text of a Word 97-2003 document: antiword (UTF-8, no wrapping), catdoc for short documents."""
    antiword, catdoc = shutil.which("antiword"), shutil.which("catdoc")
    if antiword is None:
        raise ExtractionError(f"{name}: reading .doc needs Debian's antiword and catdoc (make install-tools)")
    proc = _run([antiword, "-m", "UTF-8.txt", "-w", "0"], data)
    if proc.returncode == 0:
        return proc.stdout.decode("utf-8", "replace")
    why = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
    if catdoc is not None and "too small" in why[0]:
        small = _run([catdoc, "-w", "-d", "utf-8"], data)
        if small.returncode == 0:
            return strip_field_codes(small.stdout.decode("utf-8", "replace"))
    raise ExtractionError(f"{name}: not a readable Word 97-2003 file ({why[0].split(': ', 1)[-1].strip()})")


def read_doc(data: bytes, name: str) -> tuple[str, list[Section]]:
    """(title, sections) of a .doc file."""
    text = doc_text(data, name)
    return guess_title(text), require_text(parse_structure(text), name)
