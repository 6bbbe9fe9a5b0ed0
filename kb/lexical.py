"""BM25 over Chinese tokens (bm25s), persisted under KB_HOME and loaded memory-mapped."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kb.text import tokenize

FILTER_FIELDS = ("doc_id", "kind", "source", "field", "year")


@dataclass
class LexicalIndex:
    """A bm25s model plus, per row, the chunk id and the fields filters look at."""

    model: Any
    ids: list[str]
    fields: dict[str, np.ndarray]
    sections: list[str]
    mode: str

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score) with score > 0, restricted to rows where ``mask`` holds."""
        if not self.ids:
            return []
        toks = [t for t in tokenize(query, self.mode) if t in self.model.vocab_dict]
        if not toks:
            return []
        scores = self.model.get_scores(toks)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

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


def build(rows: list[dict[str, Any]], mode: str, out_dir: Path) -> None:
    """(Re)build the index from manifest rows and write it atomically to ``out_dir``."""
    import bm25s

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if rows:
        model = bm25s.BM25()
        model.index([tokenize(r["embed_text"], mode) or [""] for r in rows], show_progress=False)
        model.save(str(tmp / "model"))
    side = {
        "mode": mode,
        "ids": [r["chunk_id"] for r in rows],
        "sections": [r["section"] for r in rows],
        "fields": {f: [str(r.get(f) or "") for r in rows] for f in FILTER_FIELDS},
    }
    (tmp / "rows.json").write_text(json.dumps(side, ensure_ascii=False), encoding="utf-8")
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def load(index_dir: Path) -> LexicalIndex | None:
    """The persisted index, or None when nothing has been indexed yet."""
    import bm25s

    side_path = index_dir / "rows.json"
    if not side_path.exists():
        return None
    side = json.loads(side_path.read_text(encoding="utf-8"))
    model = bm25s.BM25.load(str(index_dir / "model"), mmap=True) if side["ids"] else None
    fields = {f: np.array(v, dtype=object) for f, v in side["fields"].items()}
    return LexicalIndex(model, side["ids"], fields, side["sections"], side["mode"])
