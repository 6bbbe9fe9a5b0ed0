"""Zip containers (.xlsx, .docx, .pptx): refused before parsing when broken or when they would expand into a bomb."""

from __future__ import annotations

import io
import zipfile

from kb.errors import ExtractionError

# a zip member may expand this much: real .xlsx/.docx parts compress 5-50x, a bomb 1000x
MAX_ZIP_RATIO = 200
MAX_ZIP_TOTAL = 1 << 30  # bytes, all members together, as declared by the archive
MAX_ZIP_MEMBERS = 10000
MAX_MEMBER_MB = 100  # KB_ZIP_MEMBER_MB: a 1 MB sheet inflating 194x to 210 MB passes the ratio, not this


def zip_bomb_reason(members: list[tuple[int, int]], max_member_mb: int = MAX_MEMBER_MB) -> str | None:
    """Why an archive of (uncompressed, compressed) member sizes must not be opened, or None.

    zipfile stops a member at its declared size (and fails its CRC), so the declared sizes bound
    what opening the archive can cost.
    """
    if len(members) > MAX_ZIP_MEMBERS:
        return f"{len(members)} members (limit {MAX_ZIP_MEMBERS})"
    total = sum(size for size, _ in members)
    if total > MAX_ZIP_TOTAL:
        return f"{total >> 20} MB uncompressed (limit {MAX_ZIP_TOTAL >> 20} MB)"
    biggest = max((size for size, _ in members), default=0)
    if biggest > max_member_mb << 20:
        return f"a member expands to {biggest >> 20} MB (limit {max_member_mb} MB, KB_ZIP_MEMBER_MB)"
    for size, packed in members:
        if size > 1 << 20 and size > MAX_ZIP_RATIO * max(packed, 1):
            return f"a member expands {size // max(packed, 1)}x (limit {MAX_ZIP_RATIO}x)"
    return None


def check_zip(data: bytes, name: str, what: str, max_member_mb: int = MAX_MEMBER_MB) -> None:
    """Refuse a zip container (.xlsx, .docx, .pptx) that is broken or would expand into a bomb, before parsing it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(i.file_size, i.compress_size) for i in zf.infolist()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ExtractionError(f"{name}: not a readable {what} file ({exc.__class__.__name__})") from exc
    reason = zip_bomb_reason(members, max_member_mb)
    if reason:
        raise ExtractionError(f"{name}: refused, looks like a zip bomb: {reason}")


