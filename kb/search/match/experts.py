"""Experts and teams as match candidates (or queries): their representative results as a reason, no TRL.

An expert record (kind ``expert``) names its representative results by id (``results``, comma-separated);
a need is better served by a team whose own results fit it, so those results are scored against the need
and the ones that fit are shown.
"""

from __future__ import annotations

from kb.models import Match, Reason
from kb.search.match.matcher import Filters, Matcher
from kb.search.match.reasons import reason
from kb.search.match.records import Record
from kb.search.match.threshold import rating, strong_enough

MAX_SHOWN_RESULTS = 3


def result_ids(expert: Record) -> list[str]:
    """The expert's representative result ids, in the record's order."""
    return [i.strip() for i in expert.get("results").replace("，", ",").split(",") if i.strip()]


def results_reason(matcher: Matcher, need: Record, expert: Record,
                   weights: tuple[dict[str, float], int]) -> Reason:
    """Which of the expert's representative results fit the need (scored as result candidates)."""
    known = matcher.records("result")
    own = {i: known[i] for i in result_ids(expert) if i in known}
    if not own:
        return reason("results", "未列出库中的代表成果", results=[])
    scored = matcher.rank(need, own, Filters(), len(own), weights)
    fit = [m for m in scored if strong_enough(m.score)][:MAX_SHOWN_RESULTS]
    data = [{"doc_id": m.doc_id, "title": m.title, "score": m.score, "rating": rating(m.score)} for m in scored]
    if not fit:
        names = "、".join(f"{m.doc_id}《{m.title}》" for m in scored[:MAX_SHOWN_RESULTS])
        return reason("results", f"代表成果与此需求关联不强：{names}", results=data, fit=[])
    names = "、".join(f"{m.doc_id}《{m.title}》（{rating(m.score)}）" for m in fit)
    return reason("results", f"代表成果与此需求相符：{names}", results=data, fit=[m.doc_id for m in fit])


def expert_reasons(matcher: Matcher, query: Record, cand: Record, m: Match,
                   weights: tuple[dict[str, float], int]) -> Match:
    """An expert match (either side an expert): no TRL reason; the representative results that fit the need."""
    need, expert = (query, cand) if cand.kind == "expert" else (cand, query)
    kept = [r for r in m.reasons if r.type != "trl"]
    if need.kind != "text" or cand.kind == "expert":
        kept.insert(1, results_reason(matcher, need, expert, weights))
    return m.model_copy(update={"reasons": kept, "trl": None if cand.kind == "expert" else m.trl})
