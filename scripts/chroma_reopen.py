"""How this process's memory and open files move when it reopens the Chroma store N times (docs/RELIABILITY.md).

Each round opens the collection through kb/index/vectors.py, runs one query, and closes the client with
``release`` (what the API's search thread does after another process wrote). Usage:

    KB_HOME=/path/to/a/kb .venv/bin/python scripts/chroma_reopen.py 50
"""

from __future__ import annotations

import gc
import os
import sys

import numpy as np

from kb.index import vectors
from kb.settings import get_settings


def usage() -> tuple[int, int]:
    """(resident MB, open files) of this process."""
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss // 1024, len(os.listdir("/proc/self/fd"))


def main(rounds: int) -> None:
    settings = get_settings()
    dim = len(vectors.collection_for(settings).get(limit=1, include=["embeddings"])["embeddings"][0])
    query = np.random.default_rng(0).standard_normal(dim).astype(np.float32)
    for n in range(1, rounds + 1):
        vectors.collection_for(settings).query(query_embeddings=[query], n_results=5)
        vectors.release(settings)
        gc.collect()
        rss, fds = usage()
        print(f"reopen {n}: {rss} MB, {fds} open files", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
