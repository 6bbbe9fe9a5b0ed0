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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kb.text import tokenize

FILTER_FIELDS = ("doc_id", "kind", "source", "field", "year")
STATE = "state.json"


@dataclass
class LexicalIndex:
    """A bm25s model plus, per row, the chunk id and the fields filters look at."""

    model: Any
    ids: list[str]
    fields: dict[str, np.ndarray]
    sections: list[str]
    mode: str
    _token_max: np.ndarray | None = field(default=None, repr=False)

    def search(self, query: str, k: int, mask: np.ndarray | None = None,
               relative: bool = False) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score) with score > 0, restricted to rows where ``mask`` holds.

        ``relative`` divides by the best score any row could reach for this query (each token's
        highest score summed), so scores of queries in different languages can be compared.
        """
        if not self.ids:
            return []
        toks = [t for t in tokenize(query, self.mode) if t in self.model.vocab_dict]
        if not toks:
            return []
        scores = self.model.get_scores(toks)
        if relative:
            scores = scores / max(self._ceiling(toks), 1e-9)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def _ceiling(self, toks: list[str]) -> float:
        """Upper bound of a row's score: each query token's highest score in the index, summed."""
        if self._token_max is None:
            data, indptr = np.asarray(self.model.scores["data"]), np.asarray(self.model.scores["indptr"])
            filled = np.diff(indptr) > 0
            top = np.zeros(len(indptr) - 1, dtype=np.float32)
            top[filled] = np.maximum.reduceat(data, indptr[:-1][filled])
            self._token_max = top
        ids = self.model.get_tokens_ids(toks)
        return float(self._token_max[ids].sum())

    def mask(self, filters: dict[str, str], section_prefix: str | None) -> np.ndarray | None:
        """Boolean row mask for equality filters and a heading-path prefix; None if unfiltered."""
        if not filters and not section_prefix:
            return None
        m = np.ones(len(self.ids), dtype=bool)
        for key, value in filters.items():
            m &= self.fields[key] == str(value)
        if section_prefix:
            m &= np.array([s.startswith(section_prefix) for s in self.sections], dtype=bool)
        return m


def build(rows: list[dict[str, Any]], mode: str, out_dir: Path, generation: int = 0) -> None:
    """(Re)build the index from manifest rows and swap it in atomically at ``out_dir``."""
    import bm25s

    target = out_dir.with_name(f"{out_dir.name}.{generation}.{uuid.uuid4().hex[:8]}")
    target.mkdir(parents=True)
    if rows:
        model = bm25s.BM25()
        model.index(_token_ids(rows, mode), show_progress=False)
        model.save(str(target / "model"))
    side = {
        "mode": mode,
        "generation": generation,
        "ids": [r["chunk_id"] for r in rows],
        "sections": [r["section"] for r in rows],
        "fields": {f: [str(r.get(f) or "") for r in rows] for f in FILTER_FIELDS},
    }
    (target / "rows.json").write_text(json.dumps(side, ensure_ascii=False), encoding="utf-8")
    (target / STATE).write_text(json.dumps({"generation": generation, "mode": mode, "rows": len(rows)}),
                                encoding="utf-8")
    _fsync_tree(target)
    previous = _swap(out_dir, target)
    _prune(out_dir, keep={target.name, previous})


def _token_ids(rows: list[dict[str, Any]], mode: str) -> tuple[list[np.ndarray], dict[str, int]]:
    """Each row's tokens as int32 ids plus the vocabulary, for bm25s.

    Ids, not token strings: the strings of every row at once were the build's memory ceiling
    (measured on 20k cmrc chunks: peak RSS 1,112 MB with strings, 336 MB with ids; same scores).
    """
    vocab: dict[str, int] = {}
    ids = []
    for r in rows:
        toks = tokenize(r["embed_text"], mode) or [""]
        ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in toks), dtype=np.int32, count=len(toks)))
    vocab.setdefault("", len(vocab))  # bm25s scores token-less queries against its empty token
    return ids, vocab


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
        return None if not (index_dir / "rows.json").exists() else {"generation": 0}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load(index_dir: Path) -> LexicalIndex | None:
    """The persisted index, or None when nothing has been indexed yet."""
    import bm25s

    index_dir = index_dir.resolve()  # read one generation even if a writer swaps the link meanwhile
    side_path = index_dir / "rows.json"
    if not side_path.exists():
        return None
    side = json.loads(side_path.read_text(encoding="utf-8"))
    model = bm25s.BM25.load(str(index_dir / "model"), mmap=True) if side["ids"] else None
    fields = {f: np.array(v, dtype=object) for f, v in side["fields"].items()}
    return LexicalIndex(model, side["ids"], fields, side["sections"], side["mode"])
