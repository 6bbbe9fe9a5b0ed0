"""Crash recovery and BM25 publishing, shared by the write path, ``kb check`` and the API's start-up.

Every writer holds KB_HOME's writer lock (kb/index/lock.py) and numbers its batch with a generation.
Vectors are written before the manifest rows that name them; BM25 is rebuilt from the manifest into
a new directory and swapped in atomically; only then is the generation published, and readers see
only published documents (kb/index/manifest.py). So a crash leaves at worst vectors no manifest row
names (invisible) or committed documents not yet published (invisible). ``recover`` runs at the start
of every write and of the API: it rolls back documents whose vectors are missing, drops orphan
vectors, rebuilds BM25 and publishes what was committed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.errors import WriterBusyError
from kb.index import bm25_build, bm25_files
from kb.index.indexes import Indexes, open_indexes, remove_document
from kb.index.lock import write_lock
from kb.index.manifest import Manifest
from kb.index.vectors import collection_for
from kb.settings import Settings

log = logging.getLogger("kb.ingest")


def rebuild_lexical(ix: Indexes, gen: int | None = None) -> None:
    """Rebuild BM25 from the manifest, so it holds exactly the manifest's chunks, then publish ``gen``.

    Publishing comes last: a crash before it leaves the new documents invisible, not half-indexed.
    """
    gen = ix.manifest.written_gen() if gen is None else gen
    bm25_build.build(lexical_rows(ix.manifest), ix.settings.lexical, ix.settings.bm25_dir, generation=gen,
                  translated=ix.settings.lexical_translate)
    ix.manifest.set_meta("lexical", ix.settings.lexical)
    ix.manifest.set_meta("lexical_translate", str(ix.settings.lexical_translate).lower())
    ix.manifest.publish(gen)


def lexical_rows(manifest: Manifest) -> Iterator[dict[str, Any]]:
    """The manifest's chunks as BM25 rows (text plus filter fields), streamed in BM25 row order."""
    for r in manifest.iter_chunks():
        meta = json.loads(r["meta"])
        yield {**dict(r), "source": Path(r["source"]).name, "field": meta.get("field"), "year": meta.get("year")}


def lexical_behind(manifest: Manifest, bm25_dir: Path) -> bool:
    """Whether BM25 on disk is missing or not of the generation the manifest has committed."""
    st = bm25_files.state(bm25_dir)
    if st is None:
        return manifest.counts()[0] > 0
    published = manifest.published_gen()
    return manifest.written_gen() != published or int(st.get("generation", 0)) != published


def interrupted(manifest: Manifest, vector_count: int, bm25_dir: Path) -> bool:
    """A cheap look (counts, no id lists) for an interrupted write: an unpublished generation, a stale
    BM25, or a vector count other than the chunk count (orphans of a crash before a commit)."""
    return lexical_behind(manifest, bm25_dir) or vector_count != manifest.counts()[1]


def recover_if_interrupted(ix: Indexes) -> list[str]:
    """``recover`` only when the cheap look finds something: its id scans cost seconds at scale."""
    if not interrupted(ix.manifest, ix.vectors.count(), ix.settings.bm25_dir):
        return []
    return recover(ix)


def recover(ix: Indexes) -> list[str]:
    """Undo or finish what an interrupted writer left behind; the caller holds the write lock.

    Returns one line per repair (empty when the indexes were consistent).
    """
    done: list[str] = []
    present = ix.vectors.ids()
    docs = ix.manifest.doc_chunk_ids()
    broken = sorted(d for d, ids in docs.items() if any(i not in present for i in ids))
    if broken:
        with ix.manifest:
            for doc_id in broken:
                source = ix.manifest.doc_source(doc_id)
                remove_document(ix, doc_id)
                if source:
                    ix.manifest.forget_file(source)  # so the next ingest reads the file again
            ix.manifest.mark_written(ix.manifest.written_gen() + 1)
        done.append(f"rolled back {len(broken)} documents missing vectors: {', '.join(broken[:5])}"
                    + (" ..." if len(broken) > 5 else ""))
    kept = {i for d, ids in docs.items() if d not in broken for i in ids}
    orphans = sorted(present - kept)
    if orphans:
        ix.drop_vectors(orphans)
        done.append(f"removed {len(orphans)} vectors that no manifest document names")
    pending = ix.manifest.pending_documents()
    if broken or lexical_behind(ix.manifest, ix.settings.bm25_dir):
        rebuild_lexical(ix)
        done.append(f"rebuilt BM25 and published generation {ix.manifest.published_gen()}"
                    + (f" ({len(pending)} documents of an interrupted write)" if pending else ""))
    for line in done:
        log.warning("recovery in %s: %s", ix.settings.home, line)
    return done


def needs_recovery(settings: Settings) -> bool:
    """Whether an interrupted write left something to recover (the write path's cheap look, no lock)."""
    if not settings.manifest_path.exists():
        return False
    m = Manifest(settings.manifest_path)
    try:
        return interrupted(m, int(collection_for(settings).count()), settings.bm25_dir)
    finally:
        m.close()


def recover_if_needed(settings: Settings) -> list[str]:
    """Start-up recovery for readers (the API): only when needed and no writer is at work."""
    if not needs_recovery(settings):
        return []
    try:
        with write_lock(settings.home):
            ix = open_indexes(settings)
            try:
                return recover(ix)
            finally:
                ix.close()
    except WriterBusyError:
        return []  # the writer at work recovers at its own start
