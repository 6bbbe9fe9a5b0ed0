"""Match records over the index: pairs checked against the records they name, the summary, the batch sheet.

The store is kb/index/pairs.py; this module knows which ids are needs, results and experts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kb.errors import BadInputError, NotFoundError
from kb.index.manifest import Manifest
from kb.index.pairs import STATUSES, PairStore
from kb.models import Match
from kb.search.match.export import Statuses
from kb.search.match.matcher import Filters, Matcher
from kb.search.match.records import Record
from kb.search.match.suggest import suggest

CANDIDATE_KINDS = ("result", "expert")


def record_pair(manifest: Manifest, store: PairStore, *, need_id: str, cand_id: str, status: str, note: str = "",
                by: str = "") -> dict[str, Any]:
    """Set a need ↔ result/expert pair's status; both ids must be indexed records of those kinds."""
    need = manifest.document(need_id.strip())
    if need is None or need["kind"] != "need":
        raise NotFoundError(f"no need with id {need_id!r} in the index")
    cand = manifest.document(cand_id.strip())
    if cand is None or cand["kind"] not in CANDIDATE_KINDS:
        raise NotFoundError(f"no result or expert with id {cand_id!r} in the index")
    if len(note) > 2000:
        raise BadInputError("note is longer than 2000 characters")
    row = store.set_status(need_id=need["doc_id"], cand_id=cand["doc_id"], cand_kind=cand["kind"], status=status,
                           note=note.strip(), by=by)
    return {**row, "history": store.history(need["doc_id"], cand["doc_id"])}


def summary(manifest: Manifest, store: PairStore) -> dict[str, Any]:
    """Pairs counted by status, and by the need's field and status."""
    by_status = dict.fromkeys(STATUSES, 0)
    by_field: dict[str, dict[str, int]] = {}
    pairs = store.pairs()
    for p in pairs:
        need = manifest.document(p["need_id"])
        field = str((need or {}).get("meta", {}).get("field") or "（未标注领域）")
        by_status[p["status"]] += 1
        counts = by_field.setdefault(field, dict.fromkeys(STATUSES, 0))
        counts[p["status"]] += 1
    return {"pairs": len(pairs), "by_status": by_status, "by_field": by_field}


def statuses(store: PairStore) -> Statuses:
    return {(p["need_id"], p["cand_id"]): (p["status"], p["note"]) for p in store.pairs()}


def suggest_all(matcher: Matcher, store: PairStore, *, top_k: int, filters: Filters | None = None,
                need_ids: list[str] | None = None, to: str = "result",
                progress: Callable[[Iterable[Record]], Iterable[Record]] = iter) -> list[tuple[Record, list[Match]]]:
    """Every need (or the ``need_ids``, in that order) with its top-k candidates, 不合适 pairs left out."""
    needs = matcher.records("need")
    if need_ids is not None:
        missing = [i for i in need_ids if i not in needs]
        if missing:
            raise NotFoundError(f"no need with id {missing[0]!r} in the index")
        needs = {i: needs[i] for i in need_ids}
    return [(n, suggest(matcher, mode="need", value=n.doc_id, to=to, top_k=top_k, filters=filters,
                        skip=store.rejected(n.doc_id)).matches) for n in progress(needs.values())]
