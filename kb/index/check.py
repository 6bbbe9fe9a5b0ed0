"""``kb check``: do the manifest, Chroma and BM25 hold the same chunks, and is SQLite sound?

The check holds the writer lock, so it never mistakes a batch in progress for damage. With
``repair`` it first runs the write path's crash recovery (kb/ingest/pipeline.py ``recover``) and
rebuilds BM25 if it still disagrees, then checks again. Problems it cannot repair (a corrupt
SQLite file) stay in the report.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from kb.index import bm25_files, bm25_search
from kb.index.compact import Bloat, compact, measure, needs_compaction, threshold
from kb.index.indexes import Indexes, open_indexes
from kb.index.lock import write_lock
from kb.index.recovery import rebuild_lexical, recover
from kb.settings import Settings

SHOWN = 10  # documents named per kind of problem; the rest are counted


@dataclass
class CheckReport:
    """The ``kb check --json`` shape: ok, documents, chunks, problems (+ details)."""

    ok: bool
    documents: int
    chunks: int
    problems: list[str]
    vectors: int = 0
    bm25: int = 0
    published_gen: int = 0
    repaired: list[str] = field(default_factory=list)
    stored: int = 0  # vectors Chroma's index holds, deleted ones (until a compaction) included

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_doc(label: str, doc_chunks: dict[str, list[str]], missing: set[str]) -> list[str]:
    """One line per document with chunks in ``missing`` (the first SHOWN), then a count of the rest."""
    hit = [(d, sum(i in missing for i in ids), len(ids)) for d, ids in sorted(doc_chunks.items())]
    hit = [h for h in hit if h[1]]
    lines = [f"document {d}: {k} of {n} chunks missing from {label}" for d, k, n in hit[:SHOWN]]
    if len(hit) > SHOWN:
        lines.append(f"... and {len(hit) - SHOWN} more documents missing chunks from {label}")
    return lines


def compare(doc_chunks: dict[str, list[str]], visible: set[str], vectors: set[str],
            bm25: list[str] | None) -> list[str]:
    """Disagreements between the manifest (all chunks, and the published ones), Chroma and BM25."""
    problems = _per_doc("Chroma", doc_chunks, {i for ids in doc_chunks.values() for i in ids} - vectors)
    known = {i for ids in doc_chunks.values() for i in ids}
    if orphans := vectors - known:
        problems.append(f"{len(orphans)} vectors in Chroma belong to no manifest document")
    if bm25 is None:
        return problems + (["BM25 index is missing"] if visible else [])
    problems += _per_doc("BM25", {d: [i for i in ids if i in visible] for d, ids in doc_chunks.items()},
                         visible - set(bm25))
    if extra := set(bm25) - visible:
        problems.append(f"{len(extra)} BM25 rows name no published chunk")
    if dups := [i for i, n in Counter(bm25).items() if n > 1]:
        problems.append(f"{len(dups)} chunk ids appear more than once in BM25")
    return problems


def _generations(ix: Indexes) -> list[str]:
    """An interrupted batch shows as committed-but-unpublished documents or a BM25 of another generation."""
    problems = []
    published = ix.manifest.published_gen()
    if pending := ix.manifest.pending_documents():
        problems.append(f"{len(pending)} documents were committed but never published (an interrupted write): "
                        + ", ".join(pending[:SHOWN]))
    st = bm25_files.state(ix.settings.bm25_dir)
    if st is not None and int(st.get("generation", 0)) != published:
        problems.append(f"BM25 reflects generation {st.get('generation')}, the manifest published {published}")
    return problems


def bloat_problem(bloat: Bloat, share: float) -> list[str]:
    """Deleted vectors past the threshold: they cost memory and query time until a compaction drops them."""
    if not needs_compaction(bloat, share):
        return []
    return [f"Chroma stores {bloat.stored} vectors for {bloat.live} live ones ({bloat.share:.0%} deleted, "
            "KB_COMPACT_SHARE); kb check --repair compacts it"]


def inspect(ix: Indexes) -> CheckReport:
    """Compare the three indexes by chunk id (not by count), and measure the vector store's dead weight."""
    problems = ix.manifest.integrity()
    doc_chunks = ix.manifest.doc_chunk_ids()
    vectors = ix.vectors.ids()
    lex = bm25_search.load(ix.settings.bm25_dir)
    bm25 = None if lex is None else list(lex.ids)
    problems += compare(doc_chunks, ix.manifest.visible_chunk_ids(), vectors, bm25)
    problems += _generations(ix)
    bloat = measure(ix)
    problems += bloat_problem(bloat, threshold(ix.settings))
    docs, chunks = ix.manifest.counts()
    return CheckReport(ok=not problems, documents=docs, chunks=chunks, problems=problems, vectors=len(vectors),
                       bm25=len(bm25 or []), published_gen=ix.manifest.published_gen(), stored=bloat.stored)


def _repair(ix: Indexes) -> list[str]:
    done = recover(ix)
    if needs_compaction(measure(ix), threshold(ix.settings)):
        done.append(compact(ix))
    if not inspect(ix).ok and not ix.manifest.integrity():  # e.g. a damaged BM25 directory
        rebuild_lexical(ix)
        done.append("rebuilt BM25 from the manifest")
    return done


def check(settings: Settings, repair: bool = False) -> CheckReport:
    """Check (and with ``repair``, first repair) the indexes under KB_HOME; holds the writer lock."""
    with write_lock(settings.home):
        try:
            ix = open_indexes(settings)
        except sqlite3.DatabaseError as exc:
            return CheckReport(ok=False, documents=0, chunks=0, problems=[f"manifest unreadable: {exc}"])
        try:
            repaired = _repair(ix) if repair else []
            report = inspect(ix)
        except sqlite3.DatabaseError as exc:
            return CheckReport(ok=False, documents=0, chunks=0, problems=[f"manifest unreadable: {exc}"])
        finally:
            ix.close()
    report.repaired = repaired
    return report
