"""Search filters: parsed and validated against a whitelist, never passed through raw."""

from __future__ import annotations

import re

from kb.errors import BadFilterError
from kb.models import KINDS

EQUALITY_KEYS = ("kind", "source", "field", "year", "doc_id")
ALLOWED = (*EQUALITY_KEYS, "section")
_SAFE_VALUE = re.compile(r"^[^$\x00]{1,200}$")


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings (CLI ``--filter``) to a dict."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise BadFilterError(f"filter {p!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def validate(filters: dict[str, object] | None) -> tuple[dict[str, str], str | None]:
    """(equality filters, section prefix); unknown keys and operator-looking values are refused."""
    eq: dict[str, str] = {}
    section: str | None = None
    for key, raw in (filters or {}).items():
        if key not in ALLOWED:
            raise BadFilterError(f"unknown filter {key!r}; allowed: {', '.join(ALLOWED)}")
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise BadFilterError(f"filter {key!r} must be a string or a number")
        value = str(raw).strip()
        if not _SAFE_VALUE.match(value):
            raise BadFilterError(f"filter {key!r} has an invalid value {value!r}")
        if key == "kind" and value not in KINDS:
            raise BadFilterError(f"kind must be one of {', '.join(KINDS)}")
        if key == "year" and not (value.isascii() and value.isdigit()):  # str.isdigit also takes '²' and '٣'
            raise BadFilterError("year must be a number such as 2023")
        if key == "section":
            section = value
        else:
            eq[key] = value
    return eq, section


def chroma_where(eq: dict[str, str]) -> dict[str, object] | None:
    """A Chroma ``where`` built only from whitelisted keys with ``$eq`` on plain values."""
    clauses: list[dict[str, object]] = [{k: {"$eq": v}} for k, v in eq.items()]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
