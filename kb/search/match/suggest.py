"""What the market shows for a need, a result, an expert or free text: candidates of the kinds asked for
(results, experts or both), minus pairs the bureau marked 不合适, each with its organisation, source and rating.

The scoring is the Matcher's; this module picks the pools, drops suppressed pairs and adds what an official
acts on (kb/search/match/experts.py adds the expert-specific reasons).
"""

from __future__ import annotations

from dataclasses import asdict, replace

from kb.errors import BadInputError
from kb.index.pairs import PairStore
from kb.models import Match, MatchQuery, MatchResponse
from kb.search.match.experts import expert_reasons
from kb.search.match.matcher import Filters, Matcher
from kb.search.match.records import Record
from kb.search.match.threshold import rating

TARGETS = ("result", "expert", "all")
MODES = ("need", "result", "expert", "text")


def target_kinds(mode: str, to: str) -> tuple[str, ...]:
    """Candidate kinds for a query: needs and free text go to results and/or experts; the rest to needs."""
    if to not in TARGETS:
        raise BadInputError(f"to must be one of {', '.join(TARGETS)}, got {to!r}")
    if mode in ("result", "expert"):
        return ("need",)
    return ("result", "expert") if to == "all" else (to,)


def decorate(m: Match, cand: Record) -> Match:
    """A match with the candidate's organisation, source and the plain rating."""
    return m.model_copy(update={"org": cand.get("org") or None, "source": cand.get("source") or None,
                                "rating": rating(m.score)})


def _pool_filters(flt: Filters, kind: str) -> Filters:
    """An expert has no TRL: the TRL floor applies to results only."""
    return replace(flt, min_trl=None) if kind in ("expert", "need") and flt.min_trl is not None else flt


def suggest(matcher: Matcher, *, mode: str, value: str, to: str = "result", top_k: int = 5,
            filters: Filters | None = None, skip: frozenset[str] = frozenset()) -> MatchResponse:
    """The best ``top_k`` candidates of the target kinds for one query, ``skip`` ids left out."""
    if mode not in MODES:
        raise BadInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 1 <= top_k <= 1000:
        raise BadInputError("top_k must be between 1 and 1000")
    flt = (filters or Filters()).check()
    kinds = target_kinds(mode, to)
    query = matcher.query(mode, value)
    weights = matcher.weights()
    matches: list[Match] = []
    for kind in kinds:
        cands = {i: r for i, r in matcher.records(kind).items() if i not in skip}
        for m in matcher.rank(query, cands, _pool_filters(flt, kind), top_k, weights):
            cand = cands[m.doc_id]
            if "expert" in (kind, query.kind):
                m = expert_reasons(matcher, query, cand, m, weights)
            matches.append(decorate(m, cand))
    matches.sort(key=lambda m: (-m.score, m.doc_id))
    target = kinds[0] if len(kinds) == 1 else "all"
    q = MatchQuery(mode=mode, id=None if mode == "text" else value, title=query.title or None,
                   text=query.text.strip(), target=target, top_k=top_k, **asdict(flt))
    return MatchResponse(query=q, matches=matches[:top_k], strong_match=bool(matches) and matches[0].strong)


def suggest_open(matcher: Matcher, *, mode: str, value: str, to: str = "result", top_k: int = 5,
                 filters: Filters | None = None) -> MatchResponse:
    """``suggest`` without the pairs the bureau marked 不合适 for this need (the API, the CLI and MCP answer so)."""
    with PairStore(matcher.searcher.settings.market_path) as store:
        skip = store.rejected(value) if mode == "need" else frozenset()
    return suggest(matcher, mode=mode, value=value, to=to, top_k=top_k, filters=filters, skip=skip)
