"""BM25 index on disk: the directory layout, the generation state, and the atomic swap of a new build.

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
from pathlib import Path
from typing import Any

import numpy as np

FILTER_FIELDS = ("doc_id", "kind", "source", "field", "year")
STATE = "state.json"
COLUMNS = ("section", *FILTER_FIELDS)


def token_max(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Each token's highest score over all rows (the per-token ceiling of relative scores)."""
    filled = np.diff(indptr) > 0
    top = np.zeros(len(indptr) - 1, dtype=np.float32)
    top[filled] = np.maximum.reduceat(data, indptr[:-1][filled])
    return top



def fsync_tree(root: Path) -> None:
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


def swap(link: Path, target: Path) -> str:
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


def prune(link: Path, keep: set[str]) -> None:
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


def touch(index_dir: Path) -> None:
    """Move the marker without a rebuild, so every reader reopens its indexes (after a vector store compaction)."""
    path = index_dir / STATE
    if path.exists():
        os.utime(path)


def marker(index_dir: Path) -> float:
    """When the index on disk last changed (every build writes a new state.json); -1 if there is none."""
    for name in (STATE, "rows.json"):
        path = index_dir / name
        if path.exists():
            return path.stat().st_mtime
    return -1.0

