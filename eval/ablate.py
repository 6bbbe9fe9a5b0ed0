"""Read-path variants tried against the weak query types, scored side by side (run: python -m eval.ablate).

Each variant changes one thing in the hybrid read path and is scored on the same cached index as
`kb eval`. None was adopted: docs/EVAL_NOTES.md has the figures and why. Kept so the figures
can be reproduced and the next idea can be tried the same way.

- sentence-max / sentence-mix: every chunk also gets vectors for its two-sentence windows; a chunk's
  dense score is the best window's (max) or the mean of the chunk's and the best window's (mix).
  The direct query only; the glossary translation keeps chunk vectors.
- sentence-rerank: the fused top 20 reordered by fused score + best-window similarity (min-max each).
- zh-dictionary-dense / zh-dictionary-both: a Chinese query's translation also carries CC-CEDICT's
  first sense of each word the glossary missed, on the dense side or on both sides.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kb.evaluation.metrics import HITS, evaluate, load_queries
from kb.evaluation.runner import build_index, searcher_runner
from kb.lang import cedict, glossary
from kb.lang.text import jieba_instance, split_sentences
from kb.models import SearchHit
from kb.search.fuse import Ranked
from kb.search.hybrid import Searcher
from kb.search.query import Query
from kb.search.retrievers import DenseRetriever, Languages
from kb.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("baseline", "sentence-max", "sentence-mix", "sentence-rerank", "zh-dictionary-dense", "zh-dictionary-both")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_ASKING = frozenset("什么 怎么 多少 哪些 如何 怎样 多大 是否 可以 一般 大概 需要 应该 有没有 能不能 为什么".split())


class Windows:
    """Vectors of every chunk's two-sentence windows (with the chunk's heading, as chunks are embedded)."""

    def __init__(self, searcher: Searcher) -> None:
        owners, texts = [], []
        for r in searcher.manifest.iter_chunks():
            sents = [s for s in split_sentences(r["text"]) if len(s.strip()) >= 4]
            for i, s in enumerate(sents):
                owners.append(r["chunk_id"])
                texts.append(f"{r['section'] or r['title']}\n{s}{sents[i + 1] if i + 1 < len(sents) else ''}")
        self.vectors = searcher.embedder.passages(texts)
        self.rows: dict[str, list[int]] = {}
        for j, o in enumerate(owners):
            self.rows.setdefault(o, []).append(j)

    def best(self, qvec: np.ndarray) -> dict[str, float]:
        sims = self.vectors @ qvec
        return {c: float(sims[js].max()) for c, js in self.rows.items()}


def zh_dictionary(query: str) -> list[str]:
    """CC-CEDICT first senses for the words of a Chinese query that the glossary does not cover."""
    terms, rest = glossary._zh_to_en(query)
    out = list(terms)
    for w in jieba_instance().lcut(rest):
        senses = cedict.entries().get(w) if len(w) >= 2 and _CJK.search(w) and w not in _ASKING else None
        if senses and senses[0] not in cedict.STOP and len(senses[0].split()) <= 3 and senses[0] not in out:
            out.append(senses[0])
    return out


class WindowDense(DenseRetriever):
    """Dense retrieval whose direct hits score each chunk by its best two-sentence window (max) or by the
    mean of the chunk and that window (mix); the glossary translation keeps chunk vectors."""

    def __init__(self, base: Searcher, windows: Windows, mode: str) -> None:
        super().__init__(base.vectors, lambda: base.embedder, base.manifest, Languages(base.bm25, base.manifest),
                         base.settings.translated_dense_margin)
        self.windows, self.mode = windows, mode

    def direct(self, query: Query) -> Ranked:
        hits = super().direct(query)
        best, direct = self.windows.best(self.query_vector(query.text)), dict(hits)
        pool = direct.keys() if query.filters or query.section else direct.keys() | best.keys()

        def combined(i: str) -> float:
            c, b = direct.get(i), best.get(i)
            if c is None:  # beyond Chroma's top k: its windows only
                return best[i]
            if b is None:  # a chunk without a window of four characters or more
                return c
            return max(c, b) if self.mode == "sentence-max" else (c + b) / 2

        return sorted(((i, combined(i)) for i in pool), key=lambda t: -t[1])[: query.k]


def variant(name: str, settings: Settings, base: Searcher, windows: Windows | None) -> Searcher:
    """A Searcher for one variant, composed through the Searcher's seams (a translator, a retriever)."""
    if name.startswith("zh-dictionary"):
        plain = base.translator

        def translations(q: str) -> tuple[str, str]:
            if glossary.is_latin(q):
                return plain(q)
            gloss, more = ", ".join(glossary._zh_to_en(q)[0]), ", ".join(zh_dictionary(q))
            return (more, gloss) if name.endswith("dense") else (more, more)

        return Searcher(settings, translator=translations)
    if name in ("sentence-max", "sentence-mix") and windows is not None:
        return Searcher(settings, retrievers={"dense": WindowDense(base, windows, name)})
    return base


def reranked(searcher: Searcher, windows: Windows, top: int = 20) -> Callable[[str, dict[str, str]], list[SearchHit]]:
    run = searcher_runner(searcher, "hybrid")

    def rerank(text: str, filters: dict[str, str]) -> list[SearchHit]:
        hits = run(text, filters)
        if not hits:
            return hits
        best = windows.best(searcher.embedder.queries([text])[0])
        head = hits[:top]

        def scaled(xs: list[float]) -> list[float]:
            lo, hi = min(xs), max(xs)
            return [(x - lo) / (hi - lo) if hi > lo else 1.0 for x in xs]

        keys = [a + b for a, b in zip(scaled([h.score for h in head]), scaled([best.get(h.id, 0.0) for h in head]),
                                      strict=True)]
        return [h for _, h in sorted(zip(keys, head, strict=True), key=lambda t: -t[0])] + hits[top:]

    return rerank


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=Path, default=ROOT / "eval" / "cbm")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    args = p.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := set(names) - set(VARIANTS):
        p.error(f"unknown variants {sorted(unknown)}")
    es = build_index(args.dataset, ROOT / "corpus", get_settings(), None)
    searcher = Searcher(es)
    windows = Windows(searcher) if any(n.startswith("sentence") for n in names) else None
    queries = load_queries(args.dataset / "queries.jsonl")
    out: dict[str, Any] = {}
    for name in names:
        s = variant(name, es, searcher, windows)
        run = reranked(s, windows) if name == "sentence-rerank" and windows else searcher_runner(s, "hybrid")
        res = evaluate(queries, {"hybrid": run})
        out[name] = {"all": _brief(res["methods"]["hybrid"]),
                     **{t: _brief(v["hybrid"]) for t, v in res["by_type"].items()}}
        print(name, json.dumps(out[name]["all"]), file=sys.stderr, flush=True)
    result = {"dataset": str(args.dataset), "hits": HITS, "variants": out}
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return result


def _brief(m: dict[str, float]) -> dict[str, float]:
    return {k: m[k] for k in ("recall@5", "ndcg@10", "recall@20")}


if __name__ == "__main__":
    main()
