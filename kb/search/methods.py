"""The search methods and the retrievers each one fuses: the one place their names are listed."""

from __future__ import annotations

from typing import Literal, get_args

SearchMethod = Literal["bm25", "dense", "hybrid"]
METHODS: tuple[str, ...] = get_args(SearchMethod)
RETRIEVERS: dict[str, tuple[str, ...]] = {"hybrid": ("dense", "bm25"), "dense": ("dense",), "bm25": ("bm25",)}
assert set(RETRIEVERS) == set(METHODS)


def retrievers_of(method: str) -> tuple[str, ...]:
    """The retriever names a method fuses; ValueError lists the valid methods."""
    if method not in RETRIEVERS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return RETRIEVERS[method]
