"""Chinese-aware chunking: whole sentences packed up to a character budget, with overlap.

Our own because llama-index's SentenceSplitter counts tiktoken tokens and splits on
Western punctuation, which cuts Chinese text mid-sentence.
"""

from __future__ import annotations

import re

from kb.lang.text import split_sentences
from kb.models import Chunk, Document, Section, content_hash

SECTION_SEP = " > "
# a Latin sentence ends at . ! ? (closing quotes or brackets allowed) before a space and a capital,
# digit or opening quote; "e.g. the", "Fig. 3" and "et al. (2019)" need a lower-case word after them, so
# the common abbreviations before a capital are kept explicitly
_LATIN_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|al|Fig|Figs|Eq|Eqs|No|Nos|Ref|Refs|Tab|Vol|pp|Dr|Mr|Mrs|Ms|St|Co|Inc|"
                     r"Ltd|approx|ca|Sect|Ch)\.|\b[A-Z]\.)$")
_LATIN = re.compile(r"[A-Za-z]")


def latin_sentences(text: str) -> list[str]:
    """English sentences of a Latin-script passage, each with its end punctuation."""
    out: list[str] = []
    pos = 0
    for m in _LATIN_END.finditer(text):
        head = text[pos : m.start()]
        if _ABBREV.search(head.rstrip("\"')]")):
            continue
        out.append(text[pos : m.start()].strip())
        pos = m.end()
    out.append(text[pos:].strip())
    return [s for s in out if s]


def _is_latin(s: str) -> bool:
    letters = sum(1 for c in s if c.isalpha())
    return letters > 0 and len(_LATIN.findall(s)) / letters > 0.5


def _cut(sentence: str, size: int) -> list[str]:
    """An over-long sentence in pieces of at most ``size``; Latin text is cut at spaces, never inside a word."""
    if len(sentence) <= size:
        return [sentence]
    if not _is_latin(sentence):
        return [sentence[i : i + size] for i in range(0, len(sentence), size)]
    out: list[str] = []
    rest = sentence
    while len(rest) > size:
        at = rest.rfind(" ", 0, size + 1)
        at = at if at > size // 3 else size  # one word longer than the chunk: cut it
        out.append(rest[:at].rstrip())
        rest = rest[at:].lstrip()
    return out + ([rest] if rest else [])


def _pieces(text: str, size: int) -> list[str]:
    """Sentences (English ones split at . ! ? as well), any sentence longer than ``size`` cut in pieces."""
    out: list[str] = []
    for s in split_sentences(text):
        for sent in latin_sentences(s) if _is_latin(s) else [s]:
            out.extend(_cut(sent, size))
    return out


def pack(text: str, size: int, overlap: int) -> list[str]:
    """Greedy packing of whole sentences; each new chunk repeats up to ``overlap`` chars of tail."""
    chunks: list[list[str]] = []
    cur: list[str] = []
    cur_len = 0
    for s in _pieces(text, size):
        if cur and cur_len + len(s) > size:
            chunks.append(cur)
            tail: list[str] = []
            for prev in reversed(cur):
                if sum(map(len, tail)) + len(prev) > overlap or len(prev) + len(s) > size:
                    break
                tail.insert(0, prev)
            cur, cur_len = tail, sum(map(len, tail))
        cur.append(s)
        cur_len += len(s)
    if cur:
        chunks.append(cur)
    return ["".join(_join(c)) for c in chunks]


def _join(sents: list[str]) -> list[str]:
    """Sentences back to text: Latin sentences get a space between them, CJK ones none."""
    out: list[str] = []
    for s in sents:
        if out and out[-1][-1:].isascii() and s[:1].isascii():
            out.append(" ")
        out.append(s)
    return out


def section_label(doc: Document, section: Section) -> str:
    return SECTION_SEP.join(section.path) if section.path else doc.title


_FIELD_NAME = re.compile(r"(?:^|(?<=；))[^：；]{1,40}：")


def values_only(text: str) -> str:
    """A table row's text (``日期：2019-03-01；死亡人数：3``) without its column names (``2019-03-01 3``)."""
    return " ".join(v for v in _FIELD_NAME.sub("", text).split("；") if v)


def embed_text(doc: Document, section: Section, label: str, text: str) -> str:
    """What both retrievers see: the heading path as context, then the text.

    A lookup row (ids, dates, measurements: Section.lookup) gets its values alone, with no title or column
    names: its only tokens are its own numbers and codes, so BM25 finds it by an exact value and no
    free-text question shares a word with it; the dense side embeds the same few values. Eight thousand
    rows that all said "事故记录：…；死亡人数：…" otherwise outnumbered every passage on those words.
    """
    if section.lookup:
        return values_only(text)
    # plan headings are self-explanatory; a paper's are not without its title
    context = label if doc.kind == "plan" or label.startswith(doc.title) else f"{doc.title}{SECTION_SEP}{label}"
    return f"{context}\n{text}"


def chunk_document(doc: Document, size: int, overlap: int) -> list[Chunk]:
    """Chunks of a document; the heading path goes into the embedded text as context.

    A chunk whose embedded text the document already has is left out: it adds nothing to either index, and
    hundreds of identical vectors (a table cell of 200,000 "x", a repeated row) trap Chroma's HNSW search
    among themselves, so that a dense query missed a passage whose similarity was 0.39 for ones at 0.0."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for section in doc.sections:
        label = section_label(doc, section)
        for text in pack(section.text, size, overlap):
            embedded = embed_text(doc, section, label, text)
            if embedded in seen:
                continue
            seen.add(embedded)
            cid = content_hash(doc.doc_id, str(len(chunks)), embedded)
            chunks.append(Chunk(cid, doc.doc_id, len(chunks), text, embedded, label, section.page,
                                section.ocr, section.lookup))
    return chunks
