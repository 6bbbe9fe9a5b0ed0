"""BM25 search over the index on disk (bm25s, memory-mapped): scores, top-k, filter masks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kb.index.bm25_files import COLUMNS, STATE, token_max
from kb.lang.text import tokenize


@dataclass
class LexicalIndex:
    """A bm25s model plus, per row, the chunk id and the fields filters look at.

    ``ids`` and ``codes`` are memory-mapped arrays: row i's chunk id, and per column of ``COLUMNS``
    the index of row i's value in ``values[column]`` (a service at a million chunks must not parse a
    million-row JSON file to start).
    """

    model: Any
    ids: np.ndarray
    codes: np.ndarray
    values: dict[str, list[str]]
    mode: str
    _token_max: np.ndarray | None = field(default=None, repr=False)
    latin: np.ndarray | None = None  # per row: written mostly in Latin script
    id_order: np.ndarray | None = None  # argsort of ids, for lookups by id
    _typical: float | None = field(default=None, repr=False)  # median token ceiling (coverage)

    def search(self, query: str, k: int, mask: np.ndarray | None = None,
               relative: bool = False) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score) with score > 0, restricted to rows where ``mask`` holds.

        ``relative`` divides by the best score any row could reach for this query (each token's
        highest score summed), so scores of queries in different languages can be compared.
        """
        if not len(self.ids):
            return []
        toks = [t for t in tokenize(query, self.mode) if t in self.model.vocab_dict]
        if not toks:
            return []
        scores = self.model.get_scores(toks)
        if relative:
            scores = scores / max(self._ceiling(toks), 1e-9)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        top = _top_k(scores, k)
        return [(str(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def coverage(self, query: str) -> float:
        """Share of the query's weight the index can match at all: the ceiling of its known tokens over that
        ceiling plus a typical token's weight for each token the index never saw (0 to 1).

        Relative scores leave unknown tokens out, so "asdkjqwe" or a query about another subject can reach
        1.0; this is what tells such a query from one whose every word occurs in the corpus.
        """
        toks = tokenize(query, self.mode)
        known = [t for t in toks if len(self.ids) and t in self.model.vocab_dict]
        if not known:
            return 0.0
        reach = self._ceiling(known)
        if self._typical is None:
            assert self._token_max is not None  # set by _ceiling
            self._typical = float(np.median(self._token_max))
        return reach / (reach + self._typical * (len(toks) - len(known)))

    def languages(self, chunk_ids: list[str]) -> dict[str, bool]:
        """Whether each chunk is written mostly in Latin script (``expand.is_latin`` of its text), for the
        chunks of this index; {} for an index built before the column existed."""
        if self.latin is None or self.id_order is None or not len(self.ids) or not chunk_ids:
            return {}
        want = np.asarray(chunk_ids)
        at = np.searchsorted(self.ids, want, sorter=self.id_order)
        row = self.id_order[np.minimum(at, len(self.ids) - 1)]
        found = self.ids[row] == want
        return {str(c): bool(self.latin[r]) for c, r, f in zip(chunk_ids, row.tolist(), found.tolist(), strict=True) if f}

    def _ceiling(self, toks: list[str]) -> float:
        """Upper bound of a row's score: each query token's highest score in the index, summed."""
        if self._token_max is None:  # written by build(); computed here only for an older index
            self._token_max = token_max(np.asarray(self.model.scores["data"]), np.asarray(self.model.scores["indptr"]))
        return float(self._token_max[self.model.get_tokens_ids(toks)].sum())

    def column(self, name: str) -> np.ndarray:
        """Row values of one filter column (``section`` or one of FILTER_FIELDS), as an array of str."""
        return np.asarray(self.values[name], dtype=object)[self.codes[:, COLUMNS.index(name)]]

    def mask(self, filters: dict[str, str], section_prefix: str | None) -> np.ndarray | None:
        """Boolean row mask for equality filters and a heading-path prefix; None if unfiltered."""
        if not filters and not section_prefix:
            return None
        m = np.ones(len(self.ids), dtype=bool)
        for key, value in filters.items():
            m &= self._matching(key, lambda v, want=str(value): v == want)
        if section_prefix:
            m &= self._matching("section", lambda v: v.startswith(section_prefix))
        return m

    def _matching(self, name: str, keep: Any) -> np.ndarray:
        wanted = [i for i, v in enumerate(self.values[name]) if keep(v)]
        return np.isin(self.codes[:, COLUMNS.index(name)], np.asarray(wanted, dtype=np.int32))




def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest scores, best first.

    Our own because a full ``argpartition`` over a million scores took ~10 ms, most of a BM25 query: a
    threshold from a strided sample keeps only a few thousand rows for the exact partition.
    """
    n = len(scores)
    k = min(k, n)
    cand: np.ndarray | None = None
    if n > 50 * k and n > 100_000:
        sample = scores[:: max(1, n // 20_000)]
        m = min(len(sample), max(2, 4 * k * len(sample) // n))  # about 4k rows expected above the threshold
        threshold = np.partition(sample, len(sample) - m)[len(sample) - m]
        cand = np.flatnonzero(scores >= threshold)
        if len(cand) < k:
            cand = None
    if cand is None:
        top = np.argpartition(-scores, k - 1)[:k]
    else:
        top = cand[np.argpartition(-scores[cand], k - 1)[:k]]
    return top[np.argsort(-scores[top], kind="stable")]




def load(index_dir: Path) -> LexicalIndex | None:
    """The persisted index, or None when nothing has been indexed yet."""
    import bm25s

    index_dir = index_dir.resolve()  # read one generation even if a writer swaps the link meanwhile
    if (index_dir / "rows.json").exists():
        ids, codes, values, mode = _legacy_side(index_dir / "rows.json")
    elif (index_dir / "ids.npy").exists():
        ids = np.load(index_dir / "ids.npy", mmap_mode="r")
        codes = np.load(index_dir / "codes.npy", mmap_mode="r")
        values = json.loads((index_dir / "values.json").read_text(encoding="utf-8"))
        mode = json.loads((index_dir / STATE).read_text(encoding="utf-8"))["mode"]
    else:
        return None
    model = bm25s.BM25.load(str(index_dir / "model"), mmap=True) if len(ids) else None
    def optional(name: str) -> np.ndarray | None:
        path = index_dir / name
        return np.load(path, mmap_mode="r") if path.exists() else None

    return LexicalIndex(model, ids, codes, values, mode, optional("token_max.npy"), optional("latin.npy"),
                        optional("id_order.npy"))


def _legacy_side(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, list[str]], str]:
    """An index built before the memory-mapped side files: one rows.json holding every row's fields."""
    side = json.loads(path.read_text(encoding="utf-8"))
    columns = {"section": side["sections"], **side["fields"]}
    values: dict[str, list[str]] = {}
    codes = np.zeros((len(side["ids"]), len(COLUMNS)), dtype=np.int32)
    for j, c in enumerate(COLUMNS):
        seen: dict[str, int] = {}
        codes[:, j] = [seen.setdefault(str(v), len(seen)) for v in columns.get(c, [""] * len(side["ids"]))]
        values[c] = list(seen)
    return np.array(side["ids"], dtype=str), codes, values, side["mode"]
