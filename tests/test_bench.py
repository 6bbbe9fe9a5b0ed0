"""The benchmark harness: its data generator is deterministic, and `python -m bench --quick` runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import data

ROOT = Path(__file__).resolve().parents[1]
REAL = [data.RealChunk("沁水盆地", "沁水盆地高煤阶煤层渗透率低。多分支水平井可以扩大泄气面积。樊庄区块单井日产气量提高。"),
        data.RealChunk("排采", "排采过程中要控制井底流压。降压速度过快会导致煤粉产出。"),
        data.RealChunk("LNG", "Skid-mounted liquefaction suits scattered wells. Boil-off gas must be handled.")]


def _generate(seed: int) -> list[data.Batch]:
    base = np.eye(3, 8, dtype=np.float32)
    return list(data.generate(25, REAL, np.array([0, 1, 2]), base, seed, limit=60, batch_chunks=10))


def test_generate_is_seeded_and_starts_with_the_real_chunks() -> None:
    a, b, c = _generate(7), _generate(7), _generate(8)
    ids = [ch.chunk_id for batch in a for cs in batch.chunks for ch in cs]
    assert ids == [ch.chunk_id for batch in b for cs in batch.chunks for ch in cs]
    assert ids != [ch.chunk_id for batch in c for cs in batch.chunks for ch in cs]
    assert len(ids) == len(set(ids)) == 25
    texts = [ch.text for cs in a[0].chunks for ch in cs]
    assert texts[:3] == [r.text for r in REAL]
    synthetic = [ch.text for batch in a for cs in batch.chunks for ch in cs][3:]
    assert all(0 < len(t) <= 60 for t in synthetic)
    assert np.array_equal(a[0].vectors[:3], np.eye(3, 8, dtype=np.float32))  # a base chunk keeps its real vector


def test_synthetic_vectors_are_unit_and_near_their_parent() -> None:
    rng = np.random.default_rng(0)
    base = np.eye(2, 384, dtype=np.float32)
    v = data.perturb(base, np.array([0, 0, 1]), rng)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert (v @ base.T).argmax(axis=1).tolist() == [0, 0, 1]
    assert 0.8 < float(v[0] @ base[0]) < 0.95  # cos ~ 1/sqrt(1 + NOISE^2)


def test_queries_are_distinct() -> None:
    qs = data.queries(ROOT.parent / "shared" / "data", ROOT / "eval" / "cbm", 50, 0)
    assert len(qs) == len(set(qs)) == 50


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_writes_results_and_report(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "bench_results.json").read_text(encoding="utf-8"))
    assert {"meta", "embedding", "ingest_e2e", "sizes", "profile"} <= set(res)
    assert res["embedding"]["passages_per_s"] > 0 and res["embedding"]["query_ms"]["n"] > 0
    assert res["ingest_e2e"]["ours"]["chunks"] > 0 and res["ingest_e2e"]["llamaindex"]["chunks"] > 0
    (size,) = res["sizes"]
    assert size["n"] == 2000 and size["status"] == "measured"
    assert size["disk_mb"]["total"] > 0 and size["build"]["peak_rss_mb"] > 0
    for method in ("hybrid", "bm25", "dense"):
        lat = size["inprocess"][method]
        assert lat["n"] > 0 and 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert size["llamaindex"]["n"] > 0
    assert all(size["chroma_detail"][k]["n"] > 0 for k in ("default_include", "distances_only", "after_query_embedding"))
    assert size["build"]["tokens_per_row"] > 0 and size["build"]["bm25_build_s"] > 0
    one = size["http"]["one_worker"]
    assert one["start_to_first_answer_s"] > 0 and one["one_client"]["errors"] == 0 and one["peak_rss_mb"] > 0
    assert [r["clients"] for r in size["http"]["load"]["runs"]] == [1, 4]
    assert all(r["errors"] == 0 and r["throughput_qps"] > 0 for r in size["http"]["load"]["runs"])
    assert res["profile"]["top_cumulative"]
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## Targets" in text and "2k" in text
    assert all((out / f).stat().st_size > 0 for f in ("bench_latency.png", "bench_throughput.png", "bench_rss.png"))
