"""The child of kb/ingest/sandbox.py: runs the registry's reader on files sent on stdin, under a memory limit.

Started as ``python -m kb.ingest.sandbox_child --serve MEMORY_MB``: reads a JSON header line and that many bytes,
answers in JSON lines on stdout (see kb/ingest/sandbox.py), then waits for the next file until stdin closes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kb.errors import KBError
from kb.ingest.readers import ReadContext, parse_in_process
from kb.ingest.sandbox import doc_to_json


def _limit_memory(mb: int) -> None:
    try:
        import resource
    except ImportError:  # not on Windows; the time limit still holds
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mb << 20 if hard == resource.RLIM_INFINITY else min(mb << 20, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def child(spec: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Run the registry's reader on the bytes; every failure becomes ``{"error": ...}``."""
    def progress(event: dict[str, Any], budget_s: float) -> None:
        _emit({"progress": event, "budget_s": budget_s})

    ctx = ReadContext(**spec["ctx"], on_progress=progress)
    try:
        docs, errors = parse_in_process(Path(spec["name"]), data, ctx)
    except KBError as exc:
        return {"error": exc.message.removeprefix(f"{spec['name']}: ")}
    except MemoryError:
        return {"error": f"parsing needs more than {spec['memory_mb']} MB of memory (KB_PARSE_MEMORY_MB)"}
    except RecursionError:
        return {"error": "the file nests too deeply to parse"}
    except Exception as exc:  # this process exists to contain whatever a parser raises on a broken file
        return {"error": f"unreadable file ({type(exc).__name__}: {str(exc)[:200]})"}
    return {"documents": [doc_to_json(d) for d in docs], "errors": errors}


def main() -> None:
    assert sys.argv[1] == "--serve", "usage: python -m kb.ingest.sandbox_child --serve MEMORY_MB"
    memory_mb = int(sys.argv[2])
    _limit_memory(memory_mb)
    stdin = sys.stdin.buffer
    while header := stdin.readline():
        spec = json.loads(header)
        data = stdin.read(int(spec["size"]))
        try:
            _emit(child(spec, data))
        except MemoryError:  # building the answer itself ran out
            _emit({"error": f"parsing needs more than {memory_mb} MB of memory (KB_PARSE_MEMORY_MB)"})
        del data


if __name__ == "__main__":
    main()
