"""BM25 build: manifest rows streamed into bm25s's on-disk CSC layout, then swapped in atomically."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from kb.index import charkeys
from kb.index.bm25_files import COLUMNS, STATE, fsync_tree, prune, swap, token_max
from kb.lang.glossary import translate
from kb.lang.text import tokenize

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
    fsync_tree(target)
    previous = swap(out_dir, target)
    prune(out_dir, keep={target.name, previous})


def row_tokens(text: str, mode: str, translated: bool) -> list[str]:
    """A passage's BM25 tokens, plus those of its glossary terms in the other language.

    On eval/cbm this document-side translation raised BM25 nDCG@10 from 0.738 to 0.773 (docs/EVAL_NOTES.md).
    """
    toks = tokenize(text, mode)
    if translated:
        toks += tokenize(translate(text), mode)
    return toks




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
        """One batch as integer token keys (``kb.index.charkeys``) with the row each belongs to, and each row's count.

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
        np.save(model_dir.parent / "token_max.npy", token_max(data, indptr))
        np.save(model_dir / "data.csc.index.npy", data)
        np.save(model_dir / "indices.csc.index.npy", indices)
        np.save(model_dir / "indptr.csc.index.npy", indptr)
        vocab = {self.decode(k): i for k, i in self.vocab.items()} if self.decode else dict(self.vocab)
        (model_dir / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        params = {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": n_docs, "version": version("bm25s"), "backend": "numpy"}
        (model_dir / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")


