"""Scale data: real chunks where we have them, then seeded sentence-level recombinations of them.

Texts: every real chunk (corpus/ and each ``../shared/data/*/corpus.jsonl``) is used as is; beyond
those, a synthetic chunk takes the sentences of one real *parent* chunk from a random start,
mixes in sentences drawn from the whole pool, and stops at a length drawn from the real lengths.
Vectors: only a small *base* sample of real chunks is embedded (the model does ~3-50 passages/s
here, so 1M chunks could never be embedded in a session); every other chunk gets a perturbed copy
of its parent's base vector, so the dense neighbourhoods look like real clusters, not random noise.
Everything is a pure function of the seed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.ingest.chunk import chunk_document
from kb.lang.text import split_sentences
from kb.models import KINDS, Chunk, Document, Section, content_hash

NOISE = 0.5  # perturbation scale: cos(child, parent) ~ 1/sqrt(1 + NOISE^2) ~ 0.89
FIELDS = ("排采", "钻井", "压裂", "利用", "地质", "储运")
DOC_CHUNKS = 10  # synthetic documents hold this many chunks


@dataclass(frozen=True)
class RealChunk:
    title: str
    text: str


def real_documents(corpus_dir: Path, datasets_dir: Path) -> list[Document]:
    """Every document we have real text for: the live corpus plus each dataset's corpus.jsonl."""
    from kb.evaluation.metrics import passage_documents
    from kb.ingest.files import expand, infer_kind
    from kb.ingest.readers import ReadContext, read_file

    docs: list[Document] = []
    for path in expand([corpus_dir]) if corpus_dir.exists() else []:
        try:
            docs.extend(read_file(path, path.read_bytes(), ReadContext(folder_kind=infer_kind(path)))[0])
        except Exception:  # noqa: BLE001 -- a file the pipeline refuses (e.g. build_papers.py) is skipped, as ingest would
            continue
    for jsonl in sorted(datasets_dir.glob("*/corpus.jsonl")) if datasets_dir.exists() else []:
        docs.extend(passage_documents(jsonl))
    return docs


def cmrc_passages(n: int, datasets_dir: Path | None = None) -> list[str]:
    """The first ``n`` passages of CMRC 2018 (``../shared/data/cmrc2018/corpus.jsonl``)."""
    root = datasets_dir or Path(__file__).resolve().parents[2] / "shared" / "data"
    lines = (root / "cmrc2018" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [str(json.loads(x)["text"]) for x in lines if x.strip()][:n]


def real_chunks(docs: list[Document], size: int, overlap: int) -> list[RealChunk]:
    """The chunks our chunker makes of the real documents (text without the heading context)."""
    return [RealChunk(d.title, c.text) for d in docs for c in chunk_document(d, size, overlap)]


def save_real(chunks: list[RealChunk], path: Path) -> None:
    path.write_text(json.dumps([[c.title, c.text] for c in chunks], ensure_ascii=False), encoding="utf-8")


def load_real(path: Path) -> list[RealChunk]:
    return [RealChunk(t, x) for t, x in json.loads(path.read_text(encoding="utf-8"))]


def base_sample(n_real: int, k: int, seed: int) -> np.ndarray:
    """Indices of the real chunks whose vectors are really embedded (sorted, seeded)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_real, size=min(k, n_real), replace=False))


def perturb(base: np.ndarray, parents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors near their parents' base vectors: normalize(v + NOISE * gaussian / sqrt(d))."""
    d = base.shape[1]
    v = base[parents] + rng.standard_normal((len(parents), d), dtype=np.float32) * (NOISE / np.sqrt(d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def recombine(rng: np.random.Generator, parent: list[str], pool: list[str], target: int, limit: int) -> str:
    """A synthetic chunk: the parent's sentences from a random start, ~30% swapped for pool sentences."""
    out: list[str] = []
    i = int(rng.integers(len(parent)))
    while sum(map(len, out)) < target:
        use_pool = rng.random() < 0.3
        out.append(pool[int(rng.integers(len(pool)))] if use_pool else parent[i % len(parent)])
        i += 0 if use_pool else 1
    return "".join(out)[:limit]


@dataclass
class Batch:
    """One write batch: documents, their chunks (per document) and one vector per chunk."""

    docs: list[Document]
    chunks: list[list[Chunk]]
    vectors: np.ndarray

    @property
    def n_chunks(self) -> int:
        return sum(map(len, self.chunks))


def generate(n: int, real: list[RealChunk], base_idx: np.ndarray, base_vecs: np.ndarray, seed: int,
             limit: int, batch_chunks: int = 1000) -> Iterator[Batch]:
    """``n`` chunks in batches: the real chunks first (up to n), then recombinations of them."""
    rng = np.random.default_rng(seed)
    sents = [split_sentences(c.text) or [c.text] for c in real]
    pool = [s for ss in sents for s in ss]
    lengths = np.array([len(c.text) for c in real])
    in_base = {int(r): j for j, r in enumerate(base_idx)}
    for start in range(0, n, batch_chunks):
        ids = range(start, min(n, start + batch_chunks))
        # parent: the real chunk itself, or a random real chunk; its vector source: a base chunk
        parents = np.array([i if i < len(real) else int(rng.integers(len(real))) for i in ids])
        vec_parents = np.array([in_base.get(int(p), int(p) % len(base_idx)) for p in parents])
        vecs = perturb(base_vecs, vec_parents, rng)
        for row, (i, p) in enumerate(zip(ids, parents, strict=True)):
            if i < len(real) and int(p) in in_base:
                vecs[row] = base_vecs[in_base[int(p)]]  # a base chunk keeps its real vector
        texts = [real[i].text if i < len(real) else
                 recombine(rng, sents[p], pool, int(lengths[int(rng.integers(len(lengths)))]), limit)
                 for i, p in zip(ids, parents, strict=True)]
        yield _batch(list(ids), [real[p].title for p in parents], texts, vecs, rng)


def _batch(ids: list[int], titles: list[str], texts: list[str], vecs: np.ndarray,
           rng: np.random.Generator) -> Batch:
    """Group consecutive chunks into documents of DOC_CHUNKS with seeded kind/field/year."""
    docs: list[Document] = []
    chunks: list[list[Chunk]] = []
    for i, title, text in zip(ids, titles, texts, strict=True):
        if i % DOC_CHUNKS == 0 or not docs:
            doc_id = f"bench-{i // DOC_CHUNKS:07d}"
            meta = {"field": FIELDS[int(rng.integers(len(FIELDS)))], "year": int(rng.integers(2005, 2025))}
            docs.append(Document(doc_id, KINDS[int(rng.integers(len(KINDS)))], title or doc_id,
                                 "bench-synthetic", [Section(text)], meta))
            chunks.append([])
        doc = docs[-1]
        embed_text = f"{doc.title}\n{text}"
        ord_ = len(chunks[-1])
        chunks[-1].append(Chunk(content_hash(doc.doc_id, str(ord_), embed_text), doc.doc_id, ord_, text,
                                embed_text, doc.title, None))
    return Batch(docs, chunks, vecs)


def queries(datasets_dir: Path, eval_dir: Path, n: int, seed: int) -> list[str]:
    """``n`` distinct real queries (CBM eval set first, then dataset queries), seeded order.

    Distinct, so that no query vector comes from the Searcher's per-process cache.
    """
    texts: list[str] = []
    for f in [eval_dir / "queries.jsonl", *sorted(datasets_dir.glob("*/queries.jsonl"))]:
        if f.exists():
            texts += [json.loads(x)["text"] for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    uniq = list(dict.fromkeys(t for t in texts if t.strip()))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    out = [uniq[i] for i in order[:n]]
    # fewer real queries than asked: numbered variants are still distinct texts
    return out + [f"{uniq[i % len(uniq)]} {i}" for i in range(n - len(out))]
