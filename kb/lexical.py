"""BM25 over Chinese tokens (bm25s), persisted under KB_HOME and loaded memory-mapped.

On disk, ``KB_HOME/bm25`` is a symlink to a complete index directory ``bm25.<generation>.<nonce>``.
A rebuild writes a new directory, fsyncs it, then swaps the link with one atomic rename, so a
reader (or a crash) sees the old index or the new one, never half of one. ``state.json`` says which
manifest generation the index reflects; the previous directory is kept for readers still loading it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kb import charkeys
from kb.text import tokenize

FILTER_FIELDS = ("doc_id", "kind", "source", "field", "year")
STATE = "state.json"


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
            self._token_max = _token_max(np.asarray(self.model.scores["data"]), np.asarray(self.model.scores["indptr"]))
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


COLUMNS = ("section", *FILTER_FIELDS)
BATCH_ROWS = 20_000  # rows tokenized per step; bounds one step's transient memory
K1, B = 1.5, 0.75  # bm25s's defaults (method "lucene"), which the index has always used


def build(rows: Iterable[Mapping[str, Any]], mode: str, out_dir: Path, generation: int = 0,
          translated: bool = False) -> None:
    """(Re)build the index from manifest rows and swap it in atomically at ``out_dir``.

    ``rows`` is consumed once, in order, a batch at a time: the manifest can stream a million rows
    without any list of them in memory. ``translated`` adds each row's glossary terms in the other
    language to its tokens.
    """
    target = out_dir.with_name(f"{out_dir.name}.{generation}.{uuid.uuid4().hex[:8]}")
    target.mkdir(parents=True)
    postings, side = _Postings(), _Side()
    keys = charkeys.Keys() if mode == "char" else None
    for batch in _batched(rows, BATCH_ROWS):
        side.add(batch)
        if keys is not None:  # the fast path: a whole batch at once, as integer keys
            postings.add_keys(*charkeys.batch_keys([str(r["embed_text"]) for r in batch], keys, translated))
        else:
            postings.add(row_tokens(str(r["embed_text"]), mode, translated) or [""] for r in batch)
    if keys is not None:
        postings.decode = keys.token
    if side.n:
        postings.write(target / "model")
    side.write(target)
    (target / STATE).write_text(json.dumps({"generation": generation, "mode": mode, "rows": side.n,
                                            "translated": translated}), encoding="utf-8")
    _fsync_tree(target)
    previous = _swap(out_dir, target)
    _prune(out_dir, keep={target.name, previous})


def row_tokens(text: str, mode: str, translated: bool) -> list[str]:
    """A passage's BM25 tokens, plus those of its glossary terms in the other language.

    On eval/cbm this document-side translation raised BM25 nDCG@10 from 0.738 to 0.773 (docs/EVAL_NOTES.md).
    """
    toks = tokenize(text, mode)
    if translated:
        from kb.search.expand import translate

        toks += tokenize(translate(text), mode)
    return toks


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


def _token_max(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Each token's highest score over all rows (the per-token ceiling of relative scores)."""
    filled = np.diff(indptr) > 0
    top = np.zeros(len(indptr) - 1, dtype=np.float32)
    top[filled] = np.maximum.reduceat(data, indptr[:-1][filled])
    return top


def _batched(rows: Iterable[Mapping[str, Any]], n: int) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    for r in rows:
        batch.append(r)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


class _Side:
    """Per row: the chunk id and the codes of its filter values, collected as rows stream by."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.latin: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.lookup: dict[str, dict[str, int]] = {c: {} for c in COLUMNS}

    @property
    def n(self) -> int:
        return len(self.ids)

    def add(self, batch: list[Mapping[str, Any]]) -> None:
        self.ids.extend(str(r["chunk_id"]) for r in batch)
        self.latin.append(charkeys.latin_rows([str(r.get("text") or r["embed_text"]) for r in batch]))
        block = np.empty((len(batch), len(COLUMNS)), dtype=np.int32)
        for j, c in enumerate(COLUMNS):
            seen = self.lookup[c]
            block[:, j] = [seen.setdefault(str(r.get(c) or ""), len(seen)) for r in batch]
        self.codes.append(block)

    def write(self, target: Path) -> None:
        ids = np.array(self.ids, dtype=f"U{max((len(i) for i in self.ids), default=1)}")
        np.save(target / "ids.npy", ids)
        np.save(target / "id_order.npy", np.argsort(ids, kind="stable").astype(np.int64))
        np.save(target / "latin.npy", np.concatenate(self.latin) if self.latin else np.zeros(0, dtype=bool))
        codes = np.concatenate(self.codes) if self.codes else np.empty((0, len(COLUMNS)), dtype=np.int32)
        np.save(target / "codes.npy", codes)
        values = {c: list(self.lookup[c]) for c in COLUMNS}
        (target / "values.json").write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")


class _Postings:
    """The BM25 score matrix in bm25s's on-disk layout (CSC: one column per token), built in batches.

    Our own because bm25s's ``index`` holds every (row, token, score) triple at once and converts them
    with scipy (peak 14 GB at 300k chunks, measured); here one batch's unique tokens are counted at a
    time, and the scores are written straight into their final column positions after one counting pass.
    Scores equal bm25s's (tests/test_lexical.py compares them).
    """

    def __init__(self) -> None:
        self.vocab: defaultdict[Any, int] = defaultdict()
        self.vocab.default_factory = self.vocab.__len__  # an unseen token gets the next id, at C speed
        self._id = self.vocab.__getitem__
        self.decode: Callable[[Any], str] | None = None  # vocabulary keys -> token strings, if not strings
        self._table = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)  # sorted keys, their ids
        self.df = np.zeros(0, dtype=np.int64)
        self.batches: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # tok, tf, uniq/doc, len/doc

    def add(self, token_lists: Iterable[list[str]]) -> None:
        """One batch of rows' tokens; each row's token strings live only while that row is mapped to ids."""
        parts = [np.fromiter(map(self._id, toks), dtype=np.int64, count=len(toks)) for toks in token_lists]
        n = len(parts)
        lens = np.fromiter(map(len, parts), dtype=np.int64, count=n)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        keys, tf = np.unique((np.repeat(np.arange(n, dtype=np.int64), lens) << 32) | flat, return_counts=True)
        self._append((keys & 0xFFFFFFFF).astype(np.int32), tf,  # sorted by row, then token
                     np.bincount(keys >> 32, minlength=n).astype(np.int32), lens)

    def add_keys(self, rows: np.ndarray, flat: np.ndarray, lens: np.ndarray) -> None:
        """One batch as integer token keys (``kb.charkeys``) with the row each belongs to, and each row's count.

        One sort finds each row's distinct keys and their counts; keys become ids through a sorted key
        table, so the dictionary sees each distinct key once per build, not each token.
        """
        n = len(lens)
        comb, tf = np.unique((rows << 44) | flat, return_counts=True)  # keys < 2**44, rows < 2**19
        tok = self._ids_of(comb & ((1 << 44) - 1)).astype(np.int32)
        per_doc = np.bincount(comb >> 44, minlength=n).astype(np.int32)
        self._append(tok, tf, per_doc, lens)

    def _ids_of(self, keys: np.ndarray) -> np.ndarray:
        table, ids = self._table
        at = np.minimum(np.searchsorted(table, keys), max(len(table) - 1, 0))
        new = ~(table[at] == keys) if len(table) else np.ones(len(keys), dtype=bool)
        if new.any():
            fresh = np.unique(keys[new])
            fresh_ids = np.fromiter(map(self._id, fresh.tolist()), dtype=np.int64, count=len(fresh))
            table, ids = np.concatenate([table, fresh]), np.concatenate([ids, fresh_ids])
            order = np.argsort(table, kind="stable")
            self._table = table, ids = table[order], ids[order]
            at = np.searchsorted(table, keys)
        return ids[at]

    def _append(self, tok: np.ndarray, tf: np.ndarray, per_doc: np.ndarray, lens: np.ndarray) -> None:
        """Keep one batch's (row-ordered) distinct tokens and counts, and add them to the document frequencies."""
        self.batches.append((tok, np.minimum(tf, 65535).astype(np.uint16), per_doc, lens.astype(np.int32)))
        if len(self.df) < len(self.vocab):
            self.df = np.concatenate([self.df, np.zeros(len(self.vocab) - len(self.df), dtype=np.int64)])
        self.df += np.bincount(tok, minlength=len(self.df))

    def write(self, model_dir: Path) -> None:
        import bm25s

        self._id(charkeys.EMPTY if self.decode else "")  # bm25s scores token-less queries against its empty token
        n_vocab = len(self.vocab)
        df = np.concatenate([self.df, np.zeros(n_vocab - len(self.df), dtype=np.int64)])
        n_docs = sum(len(b[2]) for b in self.batches)
        avg_len = float(np.mean(np.concatenate([b[3] for b in self.batches])))
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        data = np.empty(int(indptr[-1]), dtype=np.float32)
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        heads = indptr[:-1].copy()
        first_row = 0
        while self.batches:
            tok, tf, per_doc, lens = self.batches.pop(0)  # freed as it goes: the output takes its place
            row = np.repeat(np.arange(len(per_doc), dtype=np.int32), per_doc)
            tfc = tf / (K1 * ((1 - B) + B * lens[row] / avg_len) + tf)
            order = np.argsort(tok, kind="stable")  # within a token, rows stay ascending
            st = tok[order]
            count = np.bincount(st, minlength=n_vocab)
            pos = heads[st] + (np.arange(len(st)) - (np.cumsum(count) - count)[st])
            data[pos] = (idf[st] * tfc[order]).astype(np.float32)
            indices[pos] = row[order] + first_row
            heads += count
            first_row += len(per_doc)
        model_dir.mkdir(parents=True)
        np.save(model_dir.parent / "token_max.npy", _token_max(data, indptr))
        np.save(model_dir / "data.csc.index.npy", data)
        np.save(model_dir / "indices.csc.index.npy", indices)
        np.save(model_dir / "indptr.csc.index.npy", indptr)
        vocab = {self.decode(k): i for k, i in self.vocab.items()} if self.decode else dict(self.vocab)
        (model_dir / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        params = {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": n_docs, "version": bm25s.__version__, "backend": "numpy"}
        (model_dir / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")


def _fsync_tree(root: Path) -> None:
    """Flush the new index to disk before the link points at it (a power cut must not expose an empty file)."""
    for f in root.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap(link: Path, target: Path) -> str:
    """Point ``link`` at ``target`` in one rename; returns the name it pointed at before ("" if none)."""
    previous = os.readlink(link) if link.is_symlink() else ""
    if link.exists() and not link.is_symlink():  # an index from before generations: a plain directory
        legacy = link.with_name(f"{link.name}.legacy")
        shutil.rmtree(legacy, ignore_errors=True)
        link.rename(legacy)
    tmp = link.with_name(f"{link.name}.link-{uuid.uuid4().hex[:8]}")
    os.symlink(target.name, tmp)  # relative: KB_HOME may be moved or mounted elsewhere
    os.replace(tmp, link)
    _fsync_dir(link.parent)
    return previous


def _prune(link: Path, keep: set[str]) -> None:
    """Remove older index directories and leftovers of interrupted builds."""
    for p in link.parent.glob(f"{link.name}.*"):
        if p.name not in keep:
            if p.is_symlink() or p.is_file():
                p.unlink(missing_ok=True)
            else:
                shutil.rmtree(p, ignore_errors=True)


def state(index_dir: Path) -> dict[str, Any] | None:
    """What the index on disk reflects ({"generation", "mode", "rows"}), or None if there is none."""
    path = index_dir / STATE
    if not path.exists():
        return None if not (index_dir / "rows.json").exists() else {"generation": 0}  # before generations
    return dict(json.loads(path.read_text(encoding="utf-8")))


def marker(index_dir: Path) -> float:
    """When the index on disk last changed (every build writes a new state.json); -1 if there is none."""
    for name in (STATE, "rows.json"):
        path = index_dir / name
        if path.exists():
            return path.stat().st_mtime
    return -1.0


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
