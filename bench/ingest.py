"""End-to-end ingest of real files: our pipeline (`kb ingest`) vs llama-index's default pipeline.

Both read the same files with our readers and embed with the same model; llama-index then cuts
with its SentenceSplitter and writes through VectorStoreIndex into its own Chroma collection.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from kb.settings import Settings


def pdf_pages(paths: list[Path]) -> int:
    """Pages of the PDFs among ``paths`` (other files count none)."""
    from pypdf import PdfReader

    return sum(len(PdfReader(str(p)).pages) for p in paths if p.suffix.lower() == ".pdf")


def _rates(chunks: int, pages: int, seconds: float) -> dict[str, Any]:
    return {"chunks": chunks, "pages": pages, "seconds": round(seconds, 2),
            "chunks_per_s": round(chunks / seconds, 2), "pages_per_s": round(pages / seconds, 3)}


def ours(paths: list[Path], settings: Settings) -> dict[str, Any]:
    """kb.ingest.pipeline.ingest into an empty KB_HOME: read, chunk, embed, Chroma, manifest, BM25."""
    from kb.embed import load_embedder
    from kb.ingest.pipeline import ingest

    load_embedder(settings).queries(["预热"])  # model load is not ingest
    t0 = time.perf_counter()
    rep = ingest(paths, settings)
    return {**_rates(rep.chunks, pdf_pages(paths), time.perf_counter() - t0), "documents": rep.ingested,
            "failed": len(rep.failed)}


def llamaindex(paths: list[Path], settings: Settings) -> dict[str, Any]:
    """llama-index defaults: SentenceSplitter + VectorStoreIndex over a fresh Chroma collection."""
    from llama_index.core import Document as LIDocument
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from kb.evaluation.runner import llama_embedding
    from kb.index.vectors import open_collection
    from kb.ingest.files import infer_kind
    from kb.ingest.readers import ReadContext, read_file

    emb = llama_embedding(settings)
    t0 = time.perf_counter()
    docs = [LIDocument(text="\n".join(s.text for s in d.sections), metadata={"doc_id": d.doc_id})
            for p in paths for d in read_file(p, p.read_bytes(), ReadContext(folder_kind=infer_kind(p)))[0]]
    store = ChromaVectorStore(chroma_collection=open_collection(settings.home / "llamaindex", name="llamaindex"))
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=emb, transformations=[SentenceSplitter()])
    n = len(index.index_struct.nodes_dict) or store._collection.count()
    return _rates(n, pdf_pages(paths), time.perf_counter() - t0)


def write_passages(passages: list[str], folder: Path) -> list[Path]:
    """One .txt file per passage (as a user's folder of notes would be): the files `kb ingest` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, text in enumerate(passages):
        path = folder / f"p{n:05d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def ratio(passages: list[str], work: Path, settings: Settings) -> dict[str, Any]:
    """Whole-process `kb ingest` throughput against the embedder's own on the same chunk texts.

    The embedder is timed in this process, model loaded first; `kb ingest` is timed as a user runs it: a
    new process (imports, model load, reading, chunking, Chroma, manifest, BM25), into an empty KB_HOME,
    with the passage-vector cache off so every chunk is embedded. Ratio = embedder time / ingest time.
    """
    import os
    import subprocess
    import sys

    from kb.embed import load_embedder
    from kb.ingest.chunk import chunk_document
    from kb.ingest.readers import ReadContext, read_file

    paths = write_passages(passages, work / "ratio-corpus")
    texts = [c.embed_text for p in paths for d in read_file(p, p.read_bytes(), ReadContext())[0]
             for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap)]
    emb = load_embedder(settings)
    emb.passages(texts[:8])  # warm: the first call allocates ONNX Runtime's buffers
    t0 = time.perf_counter()
    emb.passages(texts)
    embed_s = time.perf_counter() - t0
    home = work / "ratio-home"
    env = {**os.environ, "KB_HOME": str(home), "KB_VECTOR_CACHE": "false"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "kb.cli", "ingest", str(work / "ratio-corpus"), "-q", "--json"],
                         env=env, capture_output=True, text=True, check=True)
    ingest_s = time.perf_counter() - t0
    rep = json.loads(out.stdout)
    return {"passages": len(passages), "chunks": len(texts), "ingested_chunks": rep["chunks"],
            "embed_s": round(embed_s, 2), "ingest_s": round(ingest_s, 2),
            "embed_passages_per_s": round(len(passages) / embed_s, 2),
            "ingest_passages_per_s": round(len(passages) / ingest_s, 2), "ratio": round(embed_s / ingest_s, 3)}


def main() -> None:
    import argparse

    from bench.data import cmrc_passages
    from kb.settings import get_settings

    ap = argparse.ArgumentParser(description="kb ingest throughput vs the embedder's own (prints JSON)")
    ap.add_argument("--passages", type=int, default=299, help="CMRC 2018 passages, one file each")
    ap.add_argument("--work", type=Path, default=Path("/tmp/kb-bench-ratio"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    print(json.dumps(ratio(cmrc_passages(args.passages), args.work, get_settings()), ensure_ascii=False))


if __name__ == "__main__":
    main()
