"""Build a KB_HOME of N chunks through the pipeline's own storage code, without embedding.

Run as its own process (``python -m bench.build``) so its peak RSS is the ingest process's alone:
vectors go through ``kb.index.vectors.VectorStore.upsert`` (what the pipeline calls), rows through ``Manifest``,
and BM25 through ``kb.index.bm25_build.build``; the JSON it prints says how long each took.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import data
from kb.index import bm25_build, charkeys
from kb.index.indexes import open_indexes
from kb.index.recovery import lexical_rows, rebuild_lexical
from kb.ingest.pipeline import chunk_meta
from kb.settings import Settings, get_settings

TOKENIZE_SAMPLE = 20000  # rows tokenized on their own to find tokenization's share of the BM25 build


def write_home(settings: Settings, n: int, real: list[data.RealChunk], base_idx: np.ndarray,
               base_vecs: np.ndarray, model: str, seed: int, bm25: bool = True) -> dict[str, Any]:
    """Fill ``settings.home`` with ``n`` chunks; returns the timings of each store (BM25 last, unless not ``bm25``)."""
    ix = open_indexes(settings)
    ix.manifest.set_meta("embed_model", model)  # what the Searcher checks against its embedder
    gen = ix.manifest.written_gen() + 1
    t = {"generate_s": 0.0, "chroma_s": 0.0, "manifest_s": 0.0}
    mark = time.perf_counter()
    for b in data.generate(n, real, base_idx, base_vecs, seed, settings.chunk_size):
        t0 = time.perf_counter()
        t["generate_s"] += t0 - mark
        flat = [(d, c) for d, cs in zip(b.docs, b.chunks, strict=True) for c in cs]
        ix.vectors.upsert([c.chunk_id for _, c in flat], [c.text for _, c in flat], b.vectors,
                     [chunk_meta(d, c.section, c.page) for d, c in flat])
        t1 = time.perf_counter()
        with ix.manifest:
            for d, cs in zip(b.docs, b.chunks, strict=True):
                ix.manifest.put_document(d, cs, "bench-synthetic", d.fingerprint(), gen)
            ix.manifest.mark_written(gen)
        mark = time.perf_counter()
        t["chroma_s"] += t1 - t0
        t["manifest_s"] += mark - t1
    t["rss_before_bm25_mb"] = round(_hwm_mb(), 1)  # the peak so far: Chroma, manifest, generator
    if bm25:
        t.update(_bm25(ix, settings, gen))
    ix.manifest.close()
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in t.items()}


def _bm25(ix: Any, settings: Settings, gen: int) -> dict[str, Any]:
    """kb.index.recovery.rebuild_lexical, timed, and an estimate of tokenization's share of it."""
    t0 = time.perf_counter()
    rebuild_lexical(ix, gen)
    build_s = time.perf_counter() - t0
    peak = _hwm_mb()
    sample = list(itertools.islice(lexical_rows(ix.manifest), TOKENIZE_SAMPLE))
    t1 = time.perf_counter()
    if settings.lexical == "char":  # what the build runs: the batch tokenizer
        n_tokens = len(charkeys.batch_keys([r["embed_text"] for r in sample], charkeys.Keys(),
                                           settings.lexical_translate)[1])
    else:
        n_tokens = sum(len(bm25_build.row_tokens(r["embed_text"], settings.lexical, settings.lexical_translate))
                       for r in sample)
    tok_s = (time.perf_counter() - t1) * ix.manifest.counts()[1] / max(1, len(sample))
    return {"bm25_build_s": build_s, "bm25_tokenize_s_est": tok_s, "rss_after_bm25_mb": round(peak, 1),
            "tokens_per_row": round(n_tokens / max(1, len(sample)), 1)}


def _hwm_mb() -> float:
    """This process's peak RSS so far (VmHWM)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--work", type=Path, required=True, help="holds real.json and base.npz (bench/__main__.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", choices=["all", "store", "bm25"], default="all",
                    help="store: Chroma + manifest only; bm25: then the BM25 build in a fresh process (a 1M "
                         "build split in two, so each stage's peak RSS is its own)")
    args = ap.parse_args()
    if args.stage == "bm25":
        return _bm25_stage(args.home)
    real = data.load_real(args.work / "real.json")
    base = np.load(args.work / "base.npz")
    settings = get_settings().model_copy(update={"home": args.home})
    t0 = time.perf_counter()
    out = write_home(settings, args.n, real, base["idx"], base["vecs"], str(base["model"]), args.seed,
                     bm25=args.stage == "all")
    out["total_s"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.stage == "store":
        (args.home / STORE_PART).write_text(json.dumps(out))
    print(json.dumps(out))


STORE_PART = "bench_build.store.json"


def _bm25_stage(home: Path) -> None:
    """The BM25 half of a split build: merges its timings with the store half's into bench_build.json."""
    settings = get_settings().model_copy(update={"home": home})
    ix = open_indexes(settings)
    t0 = time.perf_counter()
    out = json.loads((home / STORE_PART).read_text())
    out.update({k: round(v, 2) if isinstance(v, float) else v
                for k, v in _bm25(ix, settings, ix.manifest.written_gen()).items()})
    ix.manifest.close()
    out["total_s"] = round(out["total_s"] + time.perf_counter() - t0, 2)
    out["peak_rss_mb"] = max(out["peak_rss_mb"], round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    out["split_build"] = True
    (home / "bench_build.json").write_text(json.dumps(out))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
