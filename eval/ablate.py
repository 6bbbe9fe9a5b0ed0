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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from kb.eval_runner import _searcher_runner, build_index
from kb.evaluate import HITS, evaluate, load_queries
from kb.models import SearchHit
from kb.search import cedict, expand
from kb.search import hybrid as hybrid_module
from kb.search.hybrid import Searcher
from kb.settings import get_settings
from kb.text import _jieba, split_sentences

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
    terms, rest = expand._zh_to_en(query)
    out = list(terms)
    for w in _jieba().lcut(rest):
        senses = cedict.entries().get(w) if len(w) >= 2 and _CJK.search(w) and w not in _ASKING else None
        if senses and senses[0] not in cedict.STOP and len(senses[0].split()) <= 3 and senses[0] not in out:
            out.append(senses[0])
    return out


@contextmanager
def variant(name: str, searcher: Searcher, windows: Windows | None) -> Iterator[None]:
    if name.startswith("zh-dictionary"):
        plain = expand.translations

        def translations(q: str, dictionary: bool = True) -> tuple[str, str]:
            if expand.is_latin(q):
                return plain(q, dictionary)
            gloss, more = ", ".join(expand._zh_to_en(q)[0]), ", ".join(zh_dictionary(q))
            return (more, gloss) if name.endswith("dense") else (more, more)

        with mock.patch.object(hybrid_module, "translations", translations):
            yield
    elif name in ("sentence-max", "sentence-mix") and windows is not None:
        chunk_only = searcher._dense_one
        translated: set[str] = set()
        plain = expand.translations

        def translations(q: str, dictionary: bool = True) -> tuple[str, str]:
            out = plain(q, dictionary)
            translated.update(out)
            return out

        def dense_one(query: str, k: int, eq: dict[str, str], section: str | None) -> list[tuple[str, float]]:
            hits = chunk_only(query, k, eq, section)
            if query in translated:
                return hits
            best, direct = windows.best(searcher._qvec[query]), dict(hits)
            pool = direct.keys() if eq or section else direct.keys() | best.keys()
            def combined(i: str) -> float:
                c, b = direct.get(i), best.get(i)
                if c is None:  # beyond Chroma's top k: its windows only
                    return best[i]
                if b is None:  # a chunk without a window of four characters or more
                    return c
                return max(c, b) if name == "sentence-max" else (c + b) / 2

            return sorted(((i, combined(i)) for i in pool), key=lambda t: -t[1])[:k]

        with mock.patch.object(hybrid_module, "translations", translations), \
                mock.patch.object(searcher, "_dense_one", dense_one):
            yield
    else:
        yield


def reranked(searcher: Searcher, windows: Windows, top: int = 20) -> Callable[[str, dict[str, str]], list[SearchHit]]:
    run = _searcher_runner(searcher, "hybrid")

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
        with variant(name, searcher, windows):
            searcher._qvec.clear()
            run = reranked(searcher, windows) if name == "sentence-rerank" and windows else _searcher_runner(searcher, "hybrid")
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
