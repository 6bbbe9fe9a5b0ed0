"""Uploaded files: stored under KB_HOME/uploads/ by content hash; client names are metadata only.

An ingested file is deleted (unless KB_KEEP_INGESTED_UPLOADS), any other after KB_UPLOAD_KEEP_DAYS; the small
sidecar with the client's name stays while a document comes from the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
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
    sidecar = _sidecar(s.path)
    sidecar.parent.mkdir(exist_ok=True)
    sidecar.write_text(
        json.dumps({"name": s.name, "uploaded_at": time.time()}, ensure_ascii=False), encoding="utf-8")


def original_name(source: str) -> str | None:
    """The client's name of an uploaded file, given the manifest's source path; None if not an upload."""
    p = Path(source)
    sidecar = _sidecar(p)
    if not p.name.startswith(PREFIX) or not sidecar.exists():
        return None
    try:
        return str(json.loads(sidecar.read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError):
        return None


_STORED = re.compile(PREFIX + r"[0-9a-f]{20}\.[a-z0-9]+")


def with_client_names(text: str, uploads: Path) -> str:
    """``text`` with every stored upload name (``up-<hash>.<ext>``) replaced by the name its client gave it."""
    return _STORED.sub(lambda m: original_name(str(uploads / m.group(0))) or m.group(0), text)


def _sidecar(path: Path) -> Path:
    return path.parent / _META / f"{path.name}.json"


def discard(paths: list[Path], since: float) -> None:
    """Delete uploaded files once ingested; the name sidecar stays (``GET /documents`` shows the client's name).

    A file written again after ``since`` (the same bytes uploaded anew, for another job) is kept.
    """
    for p in paths:
        try:
            if p.stat().st_mtime <= since:
                p.unlink()
        except FileNotFoundError:
            pass


def sweep(uploads: Path, keep_days: float, in_use: Callable[[Path], bool]) -> int:
    """Delete uploads older than ``keep_days`` (0 = never), and partial writes of a crash a day old; a sidecar
    goes with its file's age once no document comes from that file. Returns how many files went."""
    if keep_days <= 0 or not uploads.is_dir():
        return 0
    now = time.time()
    gone = 0
    for p in [*uploads.glob(f"{PREFIX}*"), *uploads.glob(".part-*")]:
        age = now - p.stat().st_mtime
        if age > keep_days * 86400 or (p.name.startswith(".part-") and age > 86400):
            p.unlink(missing_ok=True)
            gone += 1
    for meta in (uploads / _META).glob(f"{PREFIX}*.json"):
        upload = uploads / meta.name.removesuffix(".json")
        if not upload.exists() and now - meta.stat().st_mtime > keep_days * 86400 and not in_use(upload):
            meta.unlink(missing_ok=True)
    return gone
