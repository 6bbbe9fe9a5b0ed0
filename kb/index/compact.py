"""Compaction of the vector store: Chroma never gives back the room of deleted vectors.

Chroma's HNSW index only marks a deleted vector; the index file, the memory it takes when loaded and
the graph a query walks keep every vector ever added (measured: after deleting a 173k-chunk
document, 1.2 GB and ~100 ms dense queries for 1,544 live chunks, even after a restart). Chroma 1.5
has no way to purge them (``chroma utils vacuum`` shrinks its SQLite file only), so we rebuild:
copy the live vectors into a new collection, point the manifest at it in one transaction, drop the
old one. A crash before the pointer moves leaves the old collection in use and a partial copy that
the next compaction removes; after it, the complete copy is in use and the old one is a leftover.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.index import bm25_files
from kb.index.indexes import DELETED_VECTORS, Indexes, deleted_vectors, open_indexes
from kb.index.lock import write_lock
from kb.index.vectors import VectorStore, client_for, copy_vectors, open_collection, pointer_key
from kb.settings import Settings

log = logging.getLogger("kb.index")
DEFAULT_SHARE = 0.5
MIN_DEAD = 64  # below this many deleted vectors a rebuild is never worth its cost
# header.bin of Chroma's hnswlib: u32 version, then u64 offset, capacity, count, element size ...
_HNSW_CAPACITY, _HNSW_COUNT, _HNSW_SIZE = slice(12, 20), slice(20, 28), slice(28, 36)


@dataclass(frozen=True)
class Bloat:
    """Vectors Chroma's index holds (deleted ones included) and live ones."""

    stored: int
    live: int

    @property
    def dead(self) -> int:
        return max(self.stored - self.live, 0)

    @property
    def share(self) -> float:
        """The deleted share of what is stored, 0 to 1."""
        return self.dead / self.stored if self.stored else 0.0


def needs_compaction(bloat: Bloat, share: float) -> bool:
    """At least ``share`` of the stored vectors are deleted ones, and at least MIN_DEAD of them."""
    return bloat.dead >= MIN_DEAD and bloat.share >= share


def threshold(settings: Settings) -> float:
    """The deleted share ``kb check`` reports and ``--repair`` compacts at: KB_COMPACT_SHARE, or half if that is 0
    (0 turns off only the automatic compaction after writes)."""
    return settings.compact_share or DEFAULT_SHARE


def hnsw_count(segment_dir: Path) -> int | None:
    """Vectors in a persisted HNSW segment, deleted ones included; None if its files are not as expected.

    Read from the index header, checked against the level-0 data file (count or capacity x element size), so
    a header layout of another Chroma version reads as unknown, never as a wrong number.
    """
    try:
        head = (segment_dir / "header.bin").read_bytes()
        data = (segment_dir / "data_level0.bin").stat().st_size
    except OSError:
        return None
    if len(head) < _HNSW_SIZE.stop:
        return None
    capacity, count, size = (int.from_bytes(head[part], "little") for part in (_HNSW_CAPACITY, _HNSW_COUNT, _HNSW_SIZE))
    return count if size and data in (count * size, capacity * size) and count <= capacity else None


def stored_vectors(settings: Settings, collection: Any) -> int | None:
    """What the embedded store's index file holds for ``collection`` (it lags up to a thousand writes); None on a
    Chroma server (not on our disk) or a layout we do not know."""
    db_path = settings.chroma_dir / "chroma.sqlite3"
    if settings.chroma_url or not db_path.exists():
        return None
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT id FROM segments WHERE collection=? AND scope='VECTOR'", (str(collection.id),)).fetchall()
    except sqlite3.Error:  # another Chroma version's schema
        return None
    finally:
        db.close()
    counts = [hnsw_count(settings.chroma_dir / str(r[0])) for r in rows]
    return None if not counts or None in counts else sum(c for c in counts if c is not None)


def measure(ix: Indexes) -> Bloat:
    """Live vectors, and what the index holds: live plus the deletes counted since the last compaction, or what
    Chroma's index file says if that is more (deletes made before we counted them; embedded store only)."""
    live = ix.vectors.count()
    on_disk = stored_vectors(ix.settings, ix.vectors.collection) or 0
    return Bloat(stored=max(on_disk, live + deleted_vectors(ix.manifest)), live=live)


def _ours(settings: Settings, name: str) -> bool:
    """The base collection or one of its compacted copies (``<base>.c<n>``), never another knowledge base's."""
    base = settings.chroma_collection
    return name == base or re.fullmatch(re.escape(base) + r"\.c\d+", name) is not None


def _next_name(settings: Settings, current: str) -> str:
    m = re.search(r"\.c(\d+)$", current)
    return f"{settings.chroma_collection}.c{int(m.group(1)) + 1 if m else 1}"


def _drop_leftovers(client: Any, settings: Settings, keep: str) -> list[str]:
    """Collections of ours other than the one in use: partial copies of a crash, or a replaced original."""
    gone = [c.name for c in client.list_collections() if _ours(settings, c.name) and c.name != keep]
    for name in gone:
        client.delete_collection(name)
    return gone


def compact(ix: Indexes) -> str:
    """Rebuild the vector store from its live vectors; the caller holds the writer lock. Returns a report line."""
    s = ix.settings
    client = client_for(s.chroma_dir, s.chroma_url)
    old = ix.vectors.collection
    _drop_leftovers(client, s, keep=old.name)
    before = measure(ix)
    new_name = _next_name(s, old.name)
    copied = copy_vectors(old, open_collection(s.chroma_dir, s.chroma_url, new_name), s.write_pause_ms)
    with ix.manifest:  # the commit point: from here on every reader opens the copy
        ix.manifest.set_meta(pointer_key(s), new_name)
        ix.manifest.set_meta(DELETED_VECTORS, "0")
    ix.vectors = VectorStore(open_collection(s.chroma_dir, s.chroma_url, new_name), s.write_pause_ms)
    client.delete_collection(old.name)
    bm25_files.touch(s.bm25_dir)  # readers in every process reopen the store (they look at the BM25 marker)
    line = (f"compacted the vector store: {copied} live vectors kept, {before.dead} deleted ones dropped "
            f"(stored {before.stored} -> {copied})")
    log.info("%s in %s", line, s.home)
    return line


def compact_if_bloated(settings: Settings) -> str | None:
    """After a write: compact when KB_COMPACT_SHARE of the stored vectors are deleted ones (0 = never).

    Returns the report line, or None when nothing was done. Takes the writer lock.
    """
    if settings.compact_share <= 0:
        return None
    with write_lock(settings.home):
        ix = open_indexes(settings)
        try:
            if not needs_compaction(measure(ix), settings.compact_share):
                return None
            return compact(ix)
        finally:
            ix.close()
