"""Need and result records as matching sees them, read from the manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kb.index.manifest import Manifest
from kb.lang.text import split_sentences
from kb.lang.thesaurus import problems_solved


@dataclass(frozen=True)
class Record:
    """A need or result as matching sees it: title, body text (description + keywords), metadata, and for
    a result the plain-language problems its technologies solve (kb/lang/thesaurus.py)."""

    doc_id: str
    kind: str
    title: str
    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"

    @property
    def trl(self) -> int | None:
        v = self.meta.get("trl")
        return int(v) if isinstance(v, (int, float)) or (isinstance(v, str) and v.isdigit()) else None

    def get(self, key: str) -> str:
        return str(self.meta.get(key) or "")



def join_chunks(texts: Iterable[str]) -> str:
    """Chunk texts of one record back into one text, dropping sentences repeated by chunk overlap."""
    seen: set[str] = set()
    out: list[str] = []
    for t in texts:
        for s in split_sentences(t):
            if s not in seen:
                seen.add(s)
                out.append(s)
    return "".join(s if s[-1:] in "。！？；!?;" else s + "\n" for s in out).strip()


def expanded(doc_id: str, kind: str, title: str, body: str, meta: dict[str, Any], thesaurus: bool = True) -> Record:
    """A record; a result is expanded with the problems its named technologies solve (thesaurus)."""
    problems = problems_solved(f"{title} {meta.get('keywords') or ''}", body) if kind == "result" and thesaurus else []
    return Record(doc_id, kind, title, body, meta, tuple(problems))


def load_records(manifest: Manifest, kind: str, thesaurus: bool = True) -> dict[str, Record]:
    """Every record of a kind from the manifest, in id order (results expanded by the thesaurus unless told)."""
    parts: dict[str, tuple[str, str, list[str]]] = {}
    for doc_id, title, meta, text in manifest.kind_chunks(kind):
        parts.setdefault(doc_id, (title, meta, []))[2].append(text)
    return {i: expanded(i, kind, t, join_chunks(chunks), json.loads(m), thesaurus) for i, (t, m, chunks) in parts.items()}



def load_record(manifest: Manifest, doc_id: str) -> Record | None:
    """One need, result or expert as the manifest (view) may show it; None when absent, unreadable or no record."""
    row = manifest.document(doc_id)
    if row is None or row["kind"] not in ("need", "result", "expert"):
        return None
    body = join_chunks(c["text"] for c in manifest.document_chunks(doc_id))
    return Record(doc_id, str(row["kind"]), str(row["title"]), body, row["meta"])


def description_of(body: str, keywords: str) -> str:
    """A record's description: its text without the keywords line the reader appended (kb/ingest/readers/tables.py)."""
    tail = f"关键词：{keywords}"
    return body[: -len(tail)].rstrip() if keywords and body.endswith(tail) else body
