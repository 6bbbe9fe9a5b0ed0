"""Match records (对接记录): the bureau's status of a need ↔ result/expert pair, with every change kept.

Their own SQLite file (KB_HOME/market.db), not the manifest: a status change is not a write of the index
(no generation, no BM25), and must not wait for an ingest that holds the writer lock. SQLite's own locking
makes each change one transaction; the file survives restarts. The webhook's sent notices live here too, so a
notice is never sent twice.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from kb.errors import BadInputError, KBError

STATUSES = ("推荐", "已联系", "洽谈中", "已签约", "不合适")
REJECTED, SIGNED = "不合适", "已签约"
_FLOW = ("推荐", "已联系", "洽谈中", "已签约")  # forward only; 不合适 from any open status, reopened as 推荐

SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
  need_id TEXT NOT NULL, cand_id TEXT NOT NULL, cand_kind TEXT NOT NULL, status TEXT NOT NULL,
  note TEXT NOT NULL, at REAL NOT NULL, by TEXT NOT NULL, PRIMARY KEY (need_id, cand_id));
CREATE TABLE IF NOT EXISTS pair_history (
  n INTEGER PRIMARY KEY AUTOINCREMENT, need_id TEXT NOT NULL, cand_id TEXT NOT NULL, status TEXT NOT NULL,
  note TEXT NOT NULL, at REAL NOT NULL, by TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pair_history_pair ON pair_history(need_id, cand_id);
CREATE TABLE IF NOT EXISTS notices (key TEXT PRIMARY KEY, at REAL NOT NULL);
"""


class TransitionError(KBError):
    """A status change the workflow does not allow (e.g. 已签约 back to 已联系)."""

    code = "invalid_transition"
    status = 409


def allowed(old: str | None, new: str) -> bool:
    """推荐 → 已联系 → 洽谈中 → 已签约, forward steps may be skipped; 不合适 from any open status; a rejected
    pair may be reopened as 推荐; the same status again only changes the note."""
    if new not in STATUSES:
        return False
    if old is None or old == new:
        return True
    if old == REJECTED:
        return new == "推荐"
    if old == SIGNED:
        return False
    return new == REJECTED or _FLOW.index(new) > _FLOW.index(old)


def _row(r: sqlite3.Row) -> dict[str, Any]:
    return {k: r[k] for k in r.keys() if k != "n"}


class PairStore:
    """The pairs, their history and the sent notices (one connection; use ``with`` or ``close``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def __enter__(self) -> PairStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def set_status(self, *, need_id: str, cand_id: str, cand_kind: str, status: str, note: str = "",
                   by: str = "") -> dict[str, Any]:
        """Change a pair's status (kept in its history with the time and who); TransitionError if not allowed."""
        if status not in STATUSES:
            raise BadInputError(f"status must be one of {'、'.join(STATUSES)}, got {status!r}")
        with self.db:  # one transaction: the pair and its history change together
            old = self.get(need_id, cand_id)
            if not allowed(old["status"] if old else None, status):
                raise TransitionError(f"状态不能从「{old['status'] if old else ''}」改为「{status}」")
            now = time.time()
            row = (need_id, cand_id, cand_kind, status, note, now, by)
            self.db.execute("INSERT OR REPLACE INTO pairs VALUES (?,?,?,?,?,?,?)", row)
            self.db.execute("INSERT INTO pair_history (need_id, cand_id, status, note, at, by) VALUES (?,?,?,?,?,?)",
                            (need_id, cand_id, status, note, now, by))
        return self.get(need_id, cand_id) or {}

    def get(self, need_id: str, cand_id: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT * FROM pairs WHERE need_id=? AND cand_id=?", (need_id, cand_id)).fetchone()
        return None if r is None else _row(r)

    def pairs(self, need_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Pairs (of one need, of one status), newest change first."""
        where = [c for c, v in (("need_id=?", need_id), ("status=?", status)) if v is not None]
        args = [v for v in (need_id, status) if v is not None]
        sql = "SELECT * FROM pairs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY at DESC, cand_id"
        return [_row(r) for r in self.db.execute(sql, args)]

    def history(self, need_id: str, cand_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM pair_history WHERE need_id=? AND cand_id=? ORDER BY n", (need_id, cand_id))
        return [_row(r) for r in rows]

    def rejected(self, need_id: str) -> frozenset[str]:
        """Candidates marked 不合适 for a need: not suggested again."""
        rows = self.db.execute("SELECT cand_id FROM pairs WHERE need_id=? AND status=?", (need_id, REJECTED))
        return frozenset(str(r[0]) for r in rows)

    def signed_needs(self) -> frozenset[str]:
        """Needs with a signed pair: no longer open."""
        return frozenset(str(r[0]) for r in self.db.execute("SELECT need_id FROM pairs WHERE status=?", (SIGNED,)))

    def sent(self, keys: list[str]) -> set[str]:
        """Which of these notice keys were delivered already."""
        return {k for k in keys if self.db.execute("SELECT 1 FROM notices WHERE key=?", (k,)).fetchone()}

    def mark_sent(self, keys: list[str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO notices VALUES (?, ?)", [(k, time.time()) for k in keys])
