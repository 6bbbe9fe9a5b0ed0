"""The last step of every reader: compatibility characters folded and personal data masked, in every section."""

from __future__ import annotations

from dataclasses import replace

from kb.lang.pii import mask_pii
from kb.lang.repair import fold_compat
from kb.models import CONTACT_KEY, Document


def clean_text(text: str, redact_pii: bool) -> str:
    """Folded compatibility characters (both the dense and the BM25 side see ordinary ones), PII masked."""
    text = fold_compat(text)
    return mask_pii(text) if redact_pii else text


def finish_document(doc: Document, redact_pii: bool) -> Document:
    """The document with every section, heading, its title and its text metadata cleaned (``clean_text``)."""
    doc.title = clean_text(doc.title, redact_pii)
    # contact details are never indexed or shown in search (CONTACT_KEY): kept as given for the record endpoint
    doc.meta = {k: clean_text(v, redact_pii if k != CONTACT_KEY else False) if isinstance(v, str) else v
                for k, v in doc.meta.items()}
    doc.sections = [replace(s, text=clean_text(s.text, redact_pii),
                            path=tuple(clean_text(p, redact_pii) for p in s.path)) for s in doc.sections]
    return doc
