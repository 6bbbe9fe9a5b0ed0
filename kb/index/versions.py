"""Earlier versions of records edited through the API (``PUT /records/{id}``): kept in the manifest, read by id.

A version is the record as it was before an edit: kind, title, metadata, visibility and its passages' text, with
when and by whom (the API key's name) it was replaced. Readers see a version only through a manifest view that
may read both the record now and the version's own visibility. The table is in the manifest's schema
(kb/index/manifest.py); versions outlive their record's deletion, unseen, since no view can read them then.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kb.index.manifest import Manifest


def keep(m: Manifest, row: dict[str, Any], texts: list[str], by: str) -> int:
    """Store ``row`` (a manifest document row) with its passages' ``texts`` as the record's next earlier version;
    returns its number (1, 2, ...). Commits."""
    with m:
        n = int(m.db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM record_versions WHERE doc_id=?",
                             (row["doc_id"],)).fetchone()[0])
        m.db.execute("INSERT INTO record_versions VALUES (?,?,?,?,?,?,?,?,?)",
                     (row["doc_id"], n, row["kind"], row["title"], json.dumps(row["meta"], ensure_ascii=False),
                      row.get("visibility") or "public", json.dumps(texts, ensure_ascii=False), time.time(), by))
    return n


def earlier(m: Manifest, doc_id: str) -> list[dict[str, Any]]:
    """The record's earlier versions this view may read, newest first; [] for a record it may not read."""
    if m.document(doc_id) is None:  # published and readable by this view, or no versions either
        return []
    rows = m.db.execute(f"SELECT * FROM record_versions v WHERE v.doc_id=? AND {m.allowed('v')} "
                        "ORDER BY v.version DESC", (doc_id,))
    out = []
    for r in rows:
        row = dict(r)
        row["meta"], row["texts"] = json.loads(row["meta"]), json.loads(row["texts"])
        out.append(row)
    return out
