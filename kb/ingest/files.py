"""Which files an ingest reads: folders expanded, hidden and .kbignore'd files skipped, kinds by folder."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

IGNORE_FILE = ".kbignore"
DEFAULT_IGNORE = ["README*"]  # a folder's README describes the folder; it is not content
_FOLDER_KINDS = {"plan": "plan", "papers": "paper", "paper": "paper", "projects": "project",
                 "needs": "need", "results": "result",
                 "experts": "expert"}


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, plus files under directories (hidden files and .kbignore patterns skipped)."""
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        patterns = _ignore_patterns(p)
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p).as_posix()
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts) and not any(
                fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(f.name, pat) for pat in patterns
            ):
                out.append(f)
    return out


def _ignore_patterns(root: Path) -> list[str]:
    f = root / IGNORE_FILE
    if not f.exists():
        return list(DEFAULT_IGNORE)
    lines = (x.strip() for x in f.read_text(encoding="utf-8").splitlines())
    return DEFAULT_IGNORE + [x.rstrip("/") + ("*" if x.endswith("/") else "") for x in lines if x and not x.startswith("#")]


def infer_kind(path: Path) -> str | None:
    """The kind implied by the nearest corpus folder name (plan/, papers/, needs/ ...)."""
    for parent in path.resolve().parents:
        if parent.name in _FOLDER_KINDS:
            return _FOLDER_KINDS[parent.name]
    return None
