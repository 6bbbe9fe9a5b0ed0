"""Run the benchmark harness and regenerate docs/BENCHMARKS.md.

    python -m bench                       # 10k, 100k, 300k, 1M chunks (each only if the last size says it fits)
    python -m bench --quick --out /tmp/b  # CI smoke run: 2k chunks, 20 queries, 1 and 4 clients
    python -m bench --render              # re-render the report from docs/bench_results.json
    python -m bench --ratio               # only `kb ingest` vs the embedder (~2 min), merged into the results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import data, http, ingest, probe, report
from kb.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "data"


SHOWN = ("embed_model", "embed_backend", "embed_threads", "embed_batch", "chunk_size", "chunk_overlap", "lexical",
         "candidates", "expand")  # the settings every figure depends on


@dataclass
class Plan:
    """What one run measures; ``--quick`` shrinks everything but keeps every code path."""

    sizes: list[int]
    queries: int = 120  # per in-process method and for one-client HTTP
    load_requests: int = 160  # per concurrency level
    clients: list[int] = field(default_factory=lambda: [1, 4, 16])
    load_workers: int = 2
    base: int = 384  # real chunks really embedded (their vectors seed all the others)
    ingest_files: list[str] = field(default_factory=lambda: ["corpus/papers/dewatering_zh.pdf",
                                                             "corpus/papers/hz_wells_zh.pdf"])
    profile_queries: int = 40
    ratio_passages: int = 299  # CMRC 2018 passages, one .txt each, for `kb ingest` vs the embedder
    budget_s: float = 2400  # a size whose build is predicted to take longer is extrapolated, not run
    server_env: dict[str, str] = field(default_factory=dict)  # extra KB_* for `kb serve` (variants)
    # extra load runs with one setting changed: one ONNX thread per worker instead of one per core
    load_variants: list[dict[str, str]] = field(default_factory=lambda: [{"KB_EMBED_THREADS": "1"}])


def plan_for(args: argparse.Namespace) -> Plan:
    if args.quick:
        p = Plan(sizes=[2000], queries=20, load_requests=20, clients=[1, 4], load_workers=1, base=24,
                 ingest_files=["corpus/projects/six_new_projects.csv"], profile_queries=10, load_variants=[],
                 ratio_passages=40)
    else:
        # 300k is the largest size whose build fits this 23 GB machine; it anchors the 1M extrapolation
        p = Plan(sizes=[10_000, 100_000, 300_000, 1_000_000])
    if args.sizes:
        p.sizes = [int(float(s)) for s in args.sizes.split(",")]
    p.server_env = dict(kv.split("=", 1) for kv in args.server_env)
    if args.budget_min is not None:
        p.budget_s = args.budget_min * 60
    return p


def machine() -> dict[str, Any]:
    """CPU model and cores (lscpu), memory, Python: the facts every figure depends on."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    facts = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    mem = _meminfo()
    return {"cpu_model": facts.get("Model name", "?").strip(), "cpus": int(facts.get("CPU(s)", "0").strip() or 0),
            "mem_total_gb": round(mem.get("MemTotal", 0) / 2**20, 1), "python": sys.version.split()[0]}


def _meminfo() -> dict[str, int]:
    rows = Path("/proc/meminfo").read_text().splitlines()
    return {r.split(":")[0]: int(r.split()[1]) for r in rows}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def du_mb(path: Path) -> float:
    """Bytes on disk under ``path`` (links followed once: KB_HOME/bm25 is a link to the live index)."""
    if not path.exists():
        return 0.0
    path = path.resolve()
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file() and not f.is_symlink()]
    return round(sum(f.stat().st_blocks * 512 for f in files) / 2**20, 1)


def disk(settings: Settings) -> dict[str, float]:
    sizes = {"chroma": du_mb(settings.chroma_dir), "bm25": du_mb(settings.bm25_dir),
             "manifest": sum(du_mb(settings.manifest_path.with_name(settings.manifest_path.name + s)) for s in ("", "-wal"))}
    return {**sizes, "total": round(sum(sizes.values()), 1)}


def prepare(work: Path, settings: Settings, plan: Plan, seed: int) -> dict[str, Any]:
    """real.json (all real chunks) and base.npz (the embedded base sample); also measures embedding."""
    from kb.embed import load_embedder

    work.mkdir(parents=True, exist_ok=True)
    real = data.real_chunks(data.real_documents(ROOT / "corpus", DATASETS), settings.chunk_size, settings.chunk_overlap)
    data.save_real(real, work / "real.json")
    emb = load_embedder(settings)
    idx = data.base_sample(len(real), plan.base, seed)
    texts = [f"{real[i].title}\n{real[i].text}" for i in idx]
    qs = data.queries(DATASETS, ROOT / "eval" / "cbm", 4000, seed)[-max(20, plan.queries // 2):]
    cache = work / f"base-{emb.name.replace(':', '_').replace('/', '_')}-{plan.base}-{seed}.npz"
    measured = probe.embedding(emb, texts[: min(len(texts), 64)], qs, settings.embed_batch)
    if cache.exists():
        vecs = np.load(cache)["vecs"]
    else:
        vecs = np.concatenate([emb.passages(texts[s : s + 64]) for s in range(0, len(texts), 64)])
        np.savez(cache, vecs=vecs)
    np.savez(work / "base.npz", idx=idx, vecs=vecs, model=np.array(emb.name))
    return {"real_chunks": len(real), "base_embedded": len(idx), **measured}


def build_size(n: int, home: Path, work: Path, seed: int, reuse: bool) -> dict[str, Any]:
    """Build KB_HOME for ``n`` chunks in a child process (its peak RSS is the ingest process's)."""
    marker = home / "bench_build.json"
    if reuse and marker.exists():
        return {**json.loads(marker.read_text()), "reused": True}
    shutil.rmtree(home, ignore_errors=True)
    cmd = [sys.executable, "-m", "bench.build", "--home", str(home), "--n", str(n), "--work", str(work), "--seed", str(seed)]
    for stage in ("store", "bm25"):  # two processes: each stage's peak RSS is its own, as in a real ingest's steps
        out = subprocess.run([*cmd, "--stage", stage], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "KB_HOME": str(home)})
        if out.returncode != 0:
            raise RuntimeError(f"bench.build --stage {stage} failed for {n}:\n{out.stderr[-3000:]}")
    res = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    marker.write_text(json.dumps(res))
    return res


def predict(n: int, done: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Linear extrapolation from the largest measured size: build time, build RSS, disk, embed time."""
    measured = [s for s in done if s.get("status") == "measured"]
    if not measured:
        return None
    ref = max(measured, key=lambda s: s["n"])
    f = n / ref["n"]
    b = ref["build"]
    return {"from_n": ref["n"], "build_total_s": round(b["total_s"] * f, 1),
            "chroma_s": round(b["chroma_s"] * f, 1), "bm25_build_s": round(b["bm25_build_s"] * f, 1),
            "bm25_tokenize_s": round(b["bm25_tokenize_s_est"] * f, 1),
            "build_peak_rss_mb": round(b["peak_rss_mb"] * f, 0), "disk_mb": round(ref["disk_mb"]["total"] * f, 0)}


def too_big(guess: dict[str, Any], budget_s: float, mem_available_mb: float) -> str:
    """Why a size should be extrapolated rather than run ("" when it fits)."""
    if guess["build_peak_rss_mb"] > 0.8 * mem_available_mb:
        return (f"predicted build peak RSS {guess['build_peak_rss_mb'] / 1024:.0f} GB > 80% of the "
                f"{mem_available_mb / 1024:.0f} GB available")
    if guess["build_total_s"] > budget_s:
        return f"predicted build {guess['build_total_s'] / 60:.0f} min > the {budget_s / 60:.0f} min budget"
    return ""


def measure_size(n: int, plan: Plan, work: Path, base: Settings, seed: int, qs: list[str], reuse: bool,
                 log: Path) -> dict[str, Any]:
    """Everything at one corpus size: build, disk, in-process latency, llama-index, HTTP."""
    t0 = time.perf_counter()
    home = work / f"home-{n}"
    settings = base.model_copy(update={"home": home})
    res: dict[str, Any] = {"n": n, "status": "measured", "load_avg_start": load_avg()}
    _say(f"[{n}] building (load {load_avg()})")
    res["build"] = build_size(n, home, work, seed, reuse)
    res["disk_mb"] = disk(settings)
    q = plan.queries
    # HTTP first: afterwards this process holds the same embedded Chroma store open, which a deployed
    # server does not share (at 1M it doubled the server's start-to-first-answer, 7.5-9 s -> 15-16 s)
    res["http"] = _http(home, plan, qs[4 * q :], log)
    _say(f"[{n}] in-process latency (load {load_avg()})")
    res["inprocess"] = probe.searcher_latency(settings, qs[: 3 * q], ["hybrid", "bm25", "dense"])
    res["llamaindex"] = probe.llamaindex_latency(settings, qs[3 * q : 4 * q])
    res["chroma_detail"] = probe.chroma_detail(settings, qs[-3 * min(q, 40) :])
    res["load_avg_inprocess"] = load_avg()
    res["load_avg_end"] = load_avg()
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


def _http(home: Path, plan: Plan, qs: list[str], log: Path) -> dict[str, Any]:
    """One worker: start-to-first-answer and one-client latency; then plan.load_workers for throughput."""
    out: dict[str, Any] = {}
    _say(f"  http: 1 worker (load {load_avg()})")
    with http.serve(home, 1, log, env=plan.server_env) as srv:
        one = http.load(srv.url, qs[: plan.queries], 1)
        out["one_worker"] = {"start_to_first_answer_s": srv.start_to_first_answer_s, "one_client": one,
                             **http.tree_rss_mb(srv.proc.pid)}
    qs = qs[plan.queries :]
    out["load"] = _load_runs(home, plan, qs, log, plan.server_env)
    out["variants"] = [{"env": v, **_load_runs(home, plan, qs, log, {**plan.server_env, **v})}
                       for v in plan.load_variants]
    return out


def _load_runs(home: Path, plan: Plan, qs: list[str], log: Path, env: dict[str, str]) -> dict[str, Any]:
    """Throughput at each client count against plan.load_workers workers started with ``env``."""
    _say(f"  http: {plan.load_workers} workers, clients {plan.clients}, env {env} (load {load_avg()})")
    with http.serve(home, plan.load_workers, log, env=env) as srv:
        http.warm(srv.url, plan.load_workers)
        runs = []
        for i, c in enumerate(plan.clients):
            part = qs[i * plan.load_requests : (i + 1) * plan.load_requests]
            runs.append({**http.load(srv.url, part, c), "load_avg": load_avg()})
        return {"workers": plan.load_workers, "start_to_first_answer_s": srv.start_to_first_answer_s,
                "runs": runs, **http.tree_rss_mb(srv.proc.pid)}


def ingest_ratio(plan: Plan, work: Path, settings: Settings) -> dict[str, Any] | None:
    """`kb ingest` in a new process vs the embedder alone on the same chunk texts (the target is ≥ 0.85);
    None without the CMRC 2018 corpus (like the dataset queries, it lives beside the repository)."""
    if not (DATASETS / "cmrc2018" / "corpus.jsonl").exists():
        _say(f"ingest ratio skipped: no {DATASETS / 'cmrc2018' / 'corpus.jsonl'}")
        return None
    _say(f"ingest ratio: kb ingest vs the embedder on {plan.ratio_passages} CMRC passages (load {load_avg()})")
    shutil.rmtree(work / "ratio", ignore_errors=True)
    passages = data.cmrc_passages(plan.ratio_passages, DATASETS)
    out = {**ingest.ratio(passages, work / "ratio", settings), "load_avg": load_avg(),
           "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    shutil.rmtree(work / "ratio", ignore_errors=True)
    return out


_T0 = time.perf_counter()


def _say(msg: str) -> None:
    print(f"{time.perf_counter() - _T0:7.1f}s {msg}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI smoke run: tiny sizes, asserts nothing about time")
    ap.add_argument("--sizes", help="comma-separated chunk counts, e.g. 10000,100000")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="where bench_results.json, BENCHMARKS.md, PNGs go")
    ap.add_argument("--work", type=Path, help="scratch data dirs (default: /tmp/kb-bench, or OUT/work with --quick)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-min", type=float, help="largest predicted build time to run (minutes); else extrapolate")
    ap.add_argument("--reuse", action="store_true", help="reuse data dirs an earlier run built (same seed and work dir)")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for `kb serve`, e.g. KB_EMBED_THREADS=1 (repeatable)")
    ap.add_argument("--render", action="store_true", help="only re-render the report from OUT/bench_results.json")
    ap.add_argument("--ratio", action="store_true",
                    help="only measure `kb ingest` against the embedder and merge it into OUT/bench_results.json")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "bench_results.json"
    if args.render or args.ratio:
        res = json.loads(results_path.read_text(encoding="utf-8"))
        if args.ratio and (ratio := ingest_ratio(plan_for(args), args.work or Path("/tmp/kb-bench"), get_settings())):
            res["ingest_ratio"] = ratio
            results_path.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
        report.write(res, args.out)
        return
    run(args, results_path)


def run(args: argparse.Namespace, results_path: Path) -> None:
    plan = plan_for(args)
    work = args.work or (args.out / "work" if args.quick else Path("/tmp/kb-bench"))
    base = get_settings()
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "meta": {"command": "python -m bench " + " ".join(sys.argv[1:]), "quick": args.quick, "seed": args.seed,
                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "load_avg_start": load_avg(),
                 "plan": plan.__dict__, "settings": {k: getattr(base, k) for k in SHOWN if hasattr(base, k)}},
        "sizes": [],
    }
    _say(f"preparing real chunks and base vectors (load {load_avg()})")
    res["embedding"] = prepare(work, base, plan, args.seed)
    _say(f"end-to-end ingest: ours vs llama-index (load {load_avg()})")
    files = [ROOT / f for f in plan.ingest_files]
    # the passage-vector cache (if this version has one) would turn a re-run's ingest into lookups
    fresh = {"vector_cache": False} if "vector_cache" in type(base).model_fields else {}
    res["ingest_e2e"] = {"files": plan.ingest_files, "load_avg": load_avg(),
                         "ours": ingest.ours(files, base.model_copy(update={"home": work / "e2e-ours", **fresh})),
                         "llamaindex": ingest.llamaindex(files, base.model_copy(update={"home": work / "e2e-llama", **fresh}))}
    shutil.rmtree(work / "e2e-ours", ignore_errors=True)
    shutil.rmtree(work / "e2e-llama", ignore_errors=True)
    if (ratio := ingest_ratio(plan, work, base)) is not None:
        res["ingest_ratio"] = ratio
    need = 4 * plan.queries + plan.queries + len(plan.clients) * plan.load_requests + 4 * plan.load_workers
    qs = data.queries(DATASETS, ROOT / "eval" / "cbm", need, args.seed)
    log = args.out / "bench_server.log" if args.quick else work / "server.log"
    for n in sorted(plan.sizes):
        guess = predict(n, res["sizes"])
        why = too_big(guess, plan.budget_s, _meminfo()["MemAvailable"] / 1024) if guess else ""
        if why:
            _say(f"[{n}] extrapolated, not run ({why}): {guess}")
            res["sizes"].append({"n": n, "status": "extrapolated", "reason": why, "predicted": guess})
            continue
        res["sizes"].append(measure_size(n, plan, work, base, args.seed, qs, args.reuse, log))
        results_path.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    prof_size = max((s for s in res["sizes"] if s["status"] == "measured" and s["n"] <= 100_000), key=lambda s: s["n"])
    _say(f"profiling the search path at {prof_size['n']} (load {load_avg()})")
    prof_settings = base.model_copy(update={"home": work / f"home-{prof_size['n']}"})
    res["profile"] = {"n": prof_size["n"], "load_avg": load_avg(),
                      **probe.profile(prof_settings, qs[-plan.profile_queries :])}
    res["meta"]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    res["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
    results_path.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    report.write(res, args.out)
    _say(f"wrote {results_path} and {args.out / 'BENCHMARKS.md'} in {res['meta']['wall_s']} s")


if __name__ == "__main__":
    main()
