"""Searches during an upload, in one process: the slowest searches and what the job thread was doing meanwhile.

An app (TestClient, hash embedder) over a 2,298-passage store takes a 5,265-passage upload while searches run one
after another; a sampler thread records the job and search threads' stacks every 50 ms. Prints the Chroma upsert
calls over 0.3 s, the searches over 0.5 s, and the stacks seen during the four slowest. docs/RELIABILITY.md
("write pause") quotes it. Run: PYTHONPATH=. .venv/bin/python scripts/search_stall.py
"""

from __future__ import annotations

import collections
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("KB_EMBED_MODEL", "hash")

import chromadb.api.models.Collection as chroma_collection  # noqa: E402

from kb.ingest.pipeline import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from tests.test_soak import WORDS, _text  # noqa: E402  (the soak test's corpus, so the figures compare)
from tests.utils import KEY, make_client  # noqa: E402

UPSERTS: list[tuple[float, int]] = []
_upsert = chroma_collection.Collection.upsert


def _timed_upsert(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    out = _upsert(self, *args, **kwargs)
    UPSERTS.append((time.monotonic() - start, len(kwargs.get("ids") or args[0])))
    return out


def _stacks(frames: list[tuple[float, dict[str, str]]], stop: threading.Event) -> None:
    while not stop.is_set():
        names = {t.ident: t.name for t in threading.enumerate()}
        snap = {}
        for tid, frame in sys._current_frames().items():
            name = names.get(tid, "?")
            if name.startswith("kb-"):
                where, f = [], frame
                while f and len(where) < 6:
                    where.append(f"{Path(f.f_code.co_filename).name}:{f.f_code.co_name}:{f.f_lineno}")
                    f = f.f_back
                snap[name] = " <- ".join(where)
        frames.append((time.monotonic(), snap))
        time.sleep(0.05)


def main() -> None:
    chroma_collection.Collection.upsert = _timed_upsert  # type: ignore[method-assign]
    rng = random.Random(19)
    tmp = Path(tempfile.mkdtemp())
    corpus = tmp / "corpus"
    corpus.mkdir()
    for f in range(10):
        (corpus / f"bulk{f:02d}.md").write_text(_text(rng, 350, f"文档{f}"), encoding="utf-8")
    ingest([corpus], Settings(home=tmp / "home"))
    frames: list[tuple[float, dict[str, str]]] = []
    stop = threading.Event()
    slow: list[tuple[float, float]] = []
    with make_client(tmp / "home", search_timeout_s=60) as c:
        c.headers["X-API-Key"] = KEY
        for _ in range(5):
            c.post("/search", json={"query": "煤层气 排采", "top_k": 5})
        threading.Thread(target=_stacks, args=(frames, stop), daemon=True).start()
        big = _text(rng, 8000, "大型上传").encode()
        job = c.post("/documents", files=[("files", ("large.md", big, "text/markdown"))]).json()["job_id"]
        n, status = 0, "queued"
        while n < 50 or status not in ("done", "failed"):
            start = time.monotonic()
            c.post("/search", json={"query": f"{random.choice(WORDS)} {random.choice(WORDS)} busy{n}", "top_k": 5})
            if time.monotonic() - start > 0.5:
                slow.append((start, time.monotonic()))
            n += 1
            status = c.get(f"/jobs/{job}").json()["status"]
    stop.set()
    print(f"upserts: {len(UPSERTS)} calls, {sum(d for d, _ in UPSERTS):.1f} s; over 0.3 s:",
          [(round(d, 2), k) for d, k in UPSERTS if d > 0.3])
    print(f"searches: {n}, job {status}; over 0.5 s:", [round(b - a, 2) for a, b in slow])
    for a, b in sorted(slow, key=lambda s: s[0] - s[1])[:4]:
        print(f"=== a search of {b - a:.2f} s; stacks sampled meanwhile:")
        seen = collections.Counter((n, s) for t, snap in frames if a <= t <= b for n, s in snap.items())
        for (name, stack), count in seen.most_common(4):
            print(f"  {count:3d} {name} {stack}")


if __name__ == "__main__":
    main()
