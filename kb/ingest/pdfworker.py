"""PDF text extraction in a child process: ``python -m kb.ingest.pdfworker`` < file.pdf > JSON.

The parent (kb.ingest.readers) kills it past KB_PDF_TIMEOUT_S: a hostile PDF can keep pypdf busy
for minutes, and a thread cannot be stopped. Imports nothing of ours, so it starts in about 0.5 s.
Writes one JSON object: ``{"pages": [...], "title": "..."}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

MEMORY_LIMIT = 2 << 30  # bytes of address space: a decompression bomb fails here, not in the machine


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # not on Windows; the time limit still holds
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _clean(text: str) -> str:
    """Lone surrogates (from broken ToUnicode maps) replaced: they cannot be stored as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def extract(data: bytes) -> dict[str, Any]:
    """Page texts and metadata title of a PDF, or an error message."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return {"error": "PDF is encrypted (password required)"}
        pages = [_clean(page.extract_text() or "") for page in reader.pages]
        title = _clean(str((reader.metadata.title if reader.metadata else None) or ""))
    except MemoryError:
        return {"error": f"PDF needs more than {MEMORY_LIMIT >> 30} GB of memory to parse"}
    except Exception as exc:  # this process exists to contain whatever pypdf raises on a broken file
        return {"error": f"unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})"}
    return {"pages": pages, "title": title}


def main() -> None:
    _limit_memory()
    json.dump(extract(sys.stdin.buffer.read()), sys.stdout)


if __name__ == "__main__":
    main()
