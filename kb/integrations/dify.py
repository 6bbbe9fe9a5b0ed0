"""Dify's external knowledge API: knowledge ids, metadata conditions and records (the pure part).

Dify (and FastGPT/MaxKB through the same shape) posts ``{knowledge_id, query, retrieval_setting,
metadata_condition?}`` and reads ``{"records": [{content, score, title, metadata}]}``. A knowledge id
names a slice of the index (docs/INTEGRATIONS.md lists them); a metadata condition is checked
against each hit's metadata. Equality on what our search filters index (kind, field, source) also
narrows the search itself; everything is checked again on the hits, so that is only a speed-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr

from kb.errors import BadFilterError, NotFoundError
from kb.models import KINDS, SearchHit
from kb.search.filters import validate
from kb.search.hybrid import Searcher

# "all", then one id per kind of document
KNOWLEDGE: dict[str, dict[str, str]] = {"all": {}, **{k: {"kind": k} for k in KINDS}}
Operator = Literal["contains", "not contains", "start with", "end with", "is", "is not", "in", "not in",
                   "empty", "not empty", "null", "not null", "=", "≠", ">", "<", "≥", "≤", "!=", ">=", "<=",
                   "before", "after"]
PUSHABLE = ("kind", "field", "source")  # what kb.search.filters applies inside the retrievers
MAX_DEPTH = 1000  # Searcher.search's limit


class UnknownKnowledgeError(NotFoundError):
    code = "unknown_knowledge"


class Condition(BaseModel):
    name: str | list[str] = Field(description="metadata name, or a list (the condition holds if any of them satisfies it)")
    comparison_operator: Operator
    value: StrictStr | StrictInt | StrictFloat | list[StrictStr] | None = None  # strict: true is not 1


class MetadataCondition(BaseModel):
    logical_operator: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(default_factory=list, max_length=50)


class Record(BaseModel):
    content: str
    score: float = Field(ge=0.0, le=1.0)
    title: str
    metadata: dict[str, Any] = Field(default_factory=dict)


def relevance(hit: SearchHit) -> float:
    """A hit's score as Dify compares it with ``score_threshold``: in [0, 1], higher is more relevant.

    The one place that reads ``SearchHit.score`` for Dify: when the ranking gives an absolute score
    (an estimated probability of relevance), this stays the identity.
    """
    return min(1.0, max(0.0, float(hit.score)))


def knowledge_filters(knowledge_id: str) -> dict[str, str]:
    """The search filters a knowledge id stands for (UnknownKnowledgeError for an id we do not have)."""
    if knowledge_id not in KNOWLEDGE:
        raise UnknownKnowledgeError(f"knowledge_id {knowledge_id!r} does not exist; use one of {', '.join(KNOWLEDGE)}")
    return dict(KNOWLEDGE[knowledge_id])


def metadata(hit: SearchHit, doc_meta: dict[str, Any]) -> dict[str, Any]:
    """A hit's metadata for Dify: where it is, plus its document's own fields; never null, no null values.

    A document field named like one of ours (a record's ``source``, its publication) is kept as ``record_<name>``.
    """
    out: dict[str, Any] = {"doc_id": hit.doc_id, "chunk_id": hit.id, "kind": hit.kind, "source": hit.source,
                           "section": hit.section, "page": hit.page, "title": hit.title}
    for k, v in doc_meta.items():
        out[f"record_{k}" if k in out else k] = v
    return {k: v for k, v in out.items() if v not in (None, "")}


# ---- conditions (pure) -------------------------------------------------------------------------

_NEGATIVE = {"not contains": "contains", "is not": "is", "not in": "in"}  # each true of a value that is not there
_LIST_SPLIT = re.compile(r"[,，、;；]")


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _when(v: Any) -> float | None:
    """A time as a Unix timestamp: a timestamp, a year (its first day) or an ISO date."""
    n = _number(v)
    if n is not None:
        return n if abs(n) > 9999 else datetime(int(n), 1, 1, tzinfo=UTC).timestamp() if n >= 1 else None
    text = _text(v)
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        year = re.match(r"^(\d{4})\b", text)
        return datetime(int(year.group(1)), 1, 1, tzinfo=UTC).timestamp() if year else None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


def _members(expected: Any) -> set[str]:
    items = expected if isinstance(expected, list) else _LIST_SPLIT.split(_text(expected))
    return {_text(x) for x in items if _text(x)}


def _compare(a: float | None, b: float | None, test: Callable[[float, float], bool]) -> bool:
    return a is not None and b is not None and test(a, b)


_ORDER: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "≠": lambda a, b: a != b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "≥": lambda a, b: a >= b, ">=": lambda a, b: a >= b, "≤": lambda a, b: a <= b,
    "<=": lambda a, b: a <= b}
_TEXT: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda a, b: b.casefold() in a.casefold(), "start with": lambda a, b: a.casefold().startswith(b.casefold()),
    "end with": lambda a, b: a.casefold().endswith(b.casefold()), "is": lambda a, b: a == b}


def holds_one(op: str, actual: Any, expected: Any) -> bool:
    """Dify's comparison ``op`` of one metadata value with the condition's value."""
    missing = actual is None or _text(actual) == ""
    if op in ("empty", "null", "not empty", "not null"):
        return missing == (op in ("empty", "null"))
    if missing:
        return op in _NEGATIVE
    if op in _NEGATIVE:
        return not holds_one(_NEGATIVE[op], actual, expected)
    if op in _TEXT:
        return expected is not None and _TEXT[op](_text(actual), _text(expected))
    if op == "in":
        return _text(actual) in _members(expected)
    if op in _ORDER:
        return _compare(_number(actual), _number(expected), _ORDER[op])
    if op in ("before", "after"):
        return _compare(_when(actual), _when(expected), _ORDER["<" if op == "before" else ">"])
    raise BadFilterError(f"unknown comparison_operator {op!r}")


def holds(cond: Condition, meta: dict[str, Any]) -> bool:
    names = [cond.name] if isinstance(cond.name, str) else cond.name
    return any(holds_one(cond.comparison_operator, meta.get(n), cond.value) for n in names)


def matches(mc: MetadataCondition | None, meta: dict[str, Any]) -> bool:
    """Whether a hit's metadata satisfies the whole condition (no conditions: every hit does)."""
    if mc is None or not mc.conditions:
        return True
    results = (holds(c, meta) for c in mc.conditions)
    return all(results) if mc.logical_operator == "and" else any(results)


def pushdown(mc: MetadataCondition | None, base: dict[str, str]) -> dict[str, str]:
    """Equality conditions the search itself can apply (kind, field, source): each narrows the candidates
    to a superset of the hits that satisfy the whole condition."""
    if mc is None or (mc.logical_operator == "or" and len(mc.conditions) != 1):
        return {}
    out: dict[str, str] = {}
    for c in mc.conditions:
        name = c.name if isinstance(c.name, str) else c.name[0] if len(c.name) == 1 else None
        value = c.value
        if name not in PUSHABLE or c.comparison_operator != "is" or not isinstance(value, str) or name in base:
            continue
        if value != value.strip() or out.get(name, value) != value:
            continue
        try:
            validate({name: value})
        except BadFilterError:
            continue  # e.g. an unknown kind: nothing matches, and the check on the hits says so
        out[name] = value
    return out


def retrieve(s: Searcher, *, knowledge_id: str, query: str, top_k: int, threshold: float,
             condition: MetadataCondition | None) -> list[Record]:
    """Dify's records for a query: at most ``top_k``, each at least ``threshold`` relevant and satisfying
    ``condition``; with a condition the search goes deeper, since hits that fail it are dropped after."""
    base = knowledge_filters(knowledge_id)
    filters = {**base, **pushdown(condition, base)}
    checked = condition is not None and bool(condition.conditions)
    depth = min(MAX_DEPTH, max(2 * s.settings.candidates, top_k)) if checked else top_k
    hits = s.search(query, top_k=depth, filters=filters).hits
    rows = s.manifest.chunk_rows([h.id for h in hits])
    out: list[Record] = []
    for h in hits:
        meta = metadata(h, rows.get(h.id, {}).get("meta") or {})
        score = relevance(h)
        if score >= threshold and matches(condition, meta):
            out.append(Record(content=h.text, score=score, title=h.title, metadata=meta))
            if len(out) == top_k:
                break
    return out
