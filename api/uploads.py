"""Uploaded files: stored under KB_HOME/uploads/ by content hash; client names are metadata only."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fastapi import UploadFile

from kb.ingest.pipeline import SUPPORTED
from kb.ingest.readers import unsupported_message
from kb.models import FailedItem

PREFIX = "up-"
_META = ".meta"  # hidden, so `kb ingest KB_HOME/uploads` would skip it


@dataclass(frozen=True)
class Stored:
    path: Path
    name: str  # the client's file name, for display only


def client_name(raw: str | None) -> str:
    """The last component of a client file name, without control characters (never used as a path)."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "upload"


def save(files: list[UploadFile], uploads: Path) -> tuple[list[Stored], list[FailedItem]]:
    """Write supported files as ``up-<sha256 prefix><ext>``; unsupported ones are reported, not stored."""
    uploads.mkdir(parents=True, exist_ok=True)
    stored: list[Stored] = []
    failed: list[FailedItem] = []
    for f in files:
        name = client_name(f.filename)
        ext = PurePosixPath(name).suffix.lower()
        if ext not in SUPPORTED:
            failed.append(FailedItem(path=name, error=unsupported_message(name)))  # a CAJ says what to do
            continue
        stored.append(Stored(_write(f, uploads, ext), name))
        _remember(stored[-1])
    return stored, failed


def _write(f: UploadFile, uploads: Path, ext: str) -> Path:
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=uploads, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            while block := f.file.read(1 << 20):
                digest.update(block)
                out.write(block)
        final = uploads / f"{PREFIX}{digest.hexdigest()[:20]}{ext}"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def _remember(s: Stored) -> None:
    meta = s.path.parent / _META
    meta.mkdir(exist_ok=True)
    (meta / f"{s.path.name}.json").write_text(
        json.dumps({"name": s.name, "uploaded_at": time.time()}, ensure_ascii=False), encoding="utf-8")


def original_name(source: str) -> str | None:
    """The client's name of an uploaded file, given the manifest's source path; None if not an upload."""
    p = Path(source)
    sidecar = p.parent / _META / f"{p.name}.json"
    if not p.name.startswith(PREFIX) or not sidecar.exists():
        return None
    try:
        return str(json.loads(sidecar.read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError):
        return None
