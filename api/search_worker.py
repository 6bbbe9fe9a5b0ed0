"""One search worker per process: a single thread owns the Searcher, so the model stays hot.

SQLite connections belong to the thread that opened them, and one thread also keeps the
embedding model from being run by many requests at once (queued requests count against
their time budget instead).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from api.errors import BusyError, SearchTimeoutError
from api.jobs import write_lock
from kb.errors import KBError
from kb.index import bm25_files, vectors
from kb.lang import cedict
from kb.lang.glossary import translate
from kb.search.hybrid import Searcher
from kb.settings import Settings

T = TypeVar("T")
log = logging.getLogger("kb.api")


class SearchWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-search")
        self._searcher: Searcher | None = None
        self._generation = 0
        self._loaded = -1
        self._seen = self._mark()
        self._own: dict[float, float] = {}  # BM25 marker before -> after each write of this process
        self._own_lock = threading.Lock()

    def refresh(self, own: tuple[float, float] | None = None) -> None:
        """Reopen the indexes before the next search (called after an ingest, a delete or a compaction).

        ``own``: the BM25 marker just before and just after this process's own write. Chroma's client saw
        that write itself, so it is kept open unless something else wrote too.
        """
        if own is not None and own[0] != own[1]:
            with self._own_lock:
                self._own[own[0]] = own[1]
        self._generation += 1

    def _mark(self) -> float:
        """When the indexes last changed: every ingest and delete writes a new BM25 index."""
        return bm25_files.marker(self.settings.bm25_dir)

    def _only_ours(self, mark: float) -> bool:
        """Whether every change since the last look was a write of this process (following its before -> after)."""
        seen = self._seen
        with self._own_lock:
            while seen != mark and seen in self._own:
                seen = self._own.pop(seen)
            if len(self._own) > 1000:  # markers of writes we never looked past
                self._own.clear()
        return seen == mark

    def _current(self) -> Searcher:
        """The Searcher, (re)opened on the worker thread when the indexes changed."""
        mark = self._mark()
        if self._searcher is None or self._loaded != self._generation or mark != self._seen:
            self._drop()
            if mark != self._seen and not self._only_ours(mark) and not self._reopen_chroma():
                mark = self._seen  # a write is under way: look again on the next search
            self._loaded, self._seen = self._generation, mark
            self._searcher = Searcher(self.settings)
        return self._searcher

    def _reopen_chroma(self) -> bool:
        """Close this process's Chroma client, so the next search reads the vectors another process (``kb ingest``,
        another worker) wrote from disk, and the indexes it had loaded leave memory; only while no write runs
        here (the job thread uses the same client). False if one does."""
        try:
            with write_lock(self.settings, wait_s=0):
                vectors.release(self.settings)
        except BusyError:
            return False
        return True

    def _drop(self) -> None:
        """Close the Searcher and free what it held now. Its parts refer to each other, so only the cycle
        collector frees them, which ran rarely: each write left the old BM25 index mapped (its files deleted
        but held open, +~10 MB and +7 file handles per write)."""
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
            gc.collect()

    async def run(self, fn: Callable[[Searcher], T], timeout: float | None = None, *, visible: frozenset[str]) -> T:
        """Run ``fn(searcher)`` on the worker thread within the search time budget (504 past it). ``fn`` gets the
        Searcher as a caller allowed ``visible`` sees it (``Searcher.scoped``): no read can skip who may see what."""
        budget = self.settings.search_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + budget
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._call, fn, deadline, visible)
        try:
            return await asyncio.wait_for(future, budget)
        except TimeoutError:
            raise SearchTimeoutError(f"search took longer than {budget:g} s (KB_SEARCH_TIMEOUT_S)") from None

    def _call(self, fn: Callable[[Searcher], T], deadline: float, visible: frozenset[str]) -> T:
        from chromadb.errors import NotFoundError as CollectionGone

        if time.monotonic() > deadline:  # its client has had its 504 already: skip the work
            raise SearchTimeoutError("search expired in the queue")
        with vectors.reading():  # an upload's writes in this process pause for it (Chroma holds the GIL)
            try:
                return fn(self._current().scoped(visible))
            except CollectionGone:  # compacted away (by another process) since our last look: open the new one
                self._drop()
                return fn(self._current().scoped(visible))

    def warm(self) -> None:
        """A throw-away search in the background (loads the model and the indexes before the first
        request), and the query translation's dictionaries in a thread of their own: on the search thread
        their ~2 s of loading held up the requests queued behind it."""
        self._pool.submit(self._warm)
        if self.settings.expand:
            threading.Thread(target=self._warm_translation, name="kb-warm-translation", daemon=True).start()

    def _warm_translation(self) -> None:
        translate("coalbed methane wells", cedict.lookup(self.settings.model_cache))

    def _warm(self) -> None:
        try:
            self._current().search("煤层气", top_k=1)
        except KBError as exc:  # e.g. a model mismatch: the first real request will report it
            log.warning("warm-up search failed: %s", exc.message)

    def close(self) -> None:
        self._pool.submit(lambda: self._searcher.close() if self._searcher else None)
        self._pool.shutdown(wait=True, cancel_futures=True)
