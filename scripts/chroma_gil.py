"""How long one Chroma upsert call holds Python's GIL, by batch size (docs/RELIABILITY.md, "write pause").

A thread that wakes every 1 ms records the gaps between its wake-ups while 5,000 random 384-d vectors are
upserted into a 2,300-vector collection in calls of 1,000, 200 and 50. Run: .venv/bin/python scripts/chroma_gil.py
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from kb.index.vectors import open_collection


def main() -> None:
    for batch in (1000, 200, 50):
        col = open_collection(Path(tempfile.mkdtemp()), "", "gil-check")
        rng = np.random.default_rng(0)

        def add(n: int, offset: int, col: object = col, rng: np.random.Generator = rng, batch: int = batch) -> None:
            v = rng.standard_normal((n, 384)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            ids = [f"i{offset + k}" for k in range(n)]
            for s in range(0, n, batch):
                part = ids[s : s + batch]
                col.upsert(ids=part, embeddings=v[s : s + batch], metadatas=[{"a": 1}] * len(part),  # type: ignore[attr-defined]
                           documents=["x" * 300] * len(part))

        add(2300, 0)
        gaps: list[float] = []
        done = threading.Event()

        def tick(done: threading.Event = done, gaps: list[float] = gaps) -> None:
            last = time.perf_counter()
            while not done.is_set():
                time.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        t = threading.Thread(target=tick)
        t.start()
        start = time.perf_counter()
        add(5000, 10_000)
        took = time.perf_counter() - start
        done.set()
        t.join()
        print(f"{batch:>5} per call: 5,000 vectors in {took:.1f} s, longest GIL gap {max(gaps) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
