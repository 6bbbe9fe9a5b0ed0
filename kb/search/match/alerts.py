"""New-arrival alerts: for records stored (new or changed) since a time, the strong matches they bring.

A new result or expert: the open needs it serves (no signed pair yet, not marked 不合适 for it); a new need: its
result and expert candidates. "Strong" is ``strong_enough`` (kb/search/match/threshold.py).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from kb.index.pairs import PairStore
from kb.models import Match
from kb.search.match.matcher import Matcher
from kb.search.match.suggest import suggest
from kb.search.match.threshold import STRONG, strong_enough

ALERT_KINDS = ("need", "result", "expert")
PER_RECORD = 10  # strong matches listed per new record


class NewArrival(BaseModel):
    doc_id: str
    kind: str
    title: str
    at: float = Field(description="when the record was stored (Unix time)")
    matches: list[Match] = Field(description="open needs it serves (a result or expert), or its candidates (a need)")


class NewArrivals(BaseModel):
    since: float
    threshold: float = Field(description="score a match must reach to be listed")
    items: list[NewArrival]


def _strong(matcher: Matcher, store: PairStore, kind: str, doc_id: str, threshold: float | None) -> list[Match]:
    """Strong matches of one record, minus closed needs and pairs marked 不合适."""
    if kind == "need":
        res = suggest(matcher, mode="need", value=doc_id, to="all", top_k=PER_RECORD, skip=store.rejected(doc_id))
        return [m for m in res.matches if strong_enough(m.score, threshold)]
    closed = store.signed_needs()
    res = suggest(matcher, mode=kind, value=doc_id, top_k=PER_RECORD)
    return [m for m in res.matches if strong_enough(m.score, threshold) and m.doc_id not in closed
            and doc_id not in store.rejected(m.doc_id)]


def new_arrivals(matcher: Matcher, store: PairStore, since: float, threshold: float | None = None) -> NewArrivals:
    """Every need, result or expert stored after ``since`` (Unix time) with its strong matches (scores at or
    above ``threshold``, by default the strong-match threshold)."""
    manifest = matcher.searcher.manifest
    titles = {k: matcher.records(k) for k in ALERT_KINDS}
    items = [NewArrival(doc_id=i, kind=k, title=titles[k][i].title, at=at,
                        matches=_strong(matcher, store, k, i, threshold))
             for i, k, at in manifest.changed_since(ALERT_KINDS, since) if i in titles[k]]
    return NewArrivals(since=since, threshold=STRONG if threshold is None else threshold, items=items)


def notices(arrivals: NewArrivals) -> list[dict[str, object]]:
    """One notice per need ↔ candidate pair (a pair found from both sides is one notice)."""
    out: dict[str, dict[str, object]] = {}
    for item in arrivals.items:
        for m in item.matches:
            need, cand = (item, m) if item.kind == "need" else (m, item)
            key = f"{need.doc_id}|{cand.doc_id}"
            out.setdefault(key, {"key": key, "need_id": need.doc_id, "need_title": need.title,
                                 "candidate_id": cand.doc_id, "candidate_kind": cand.kind,
                                 "candidate_title": cand.title, "score": m.score, "rating": m.rating,
                                 "new": item.doc_id, "reasons": [r.text for r in m.reasons if r.type != "score"]})
    return list(out.values())
