"""End-to-end ingest of real files: our pipeline (`kb ingest`) vs llama-index's default pipeline.

Both read the same files with our readers and embed with the same model; llama-index then cuts
with its SentenceSplitter and writes through VectorStoreIndex into its own Chroma collection.
"""

from __future__ import annotations

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

    load_embedder(settings.embed_model, settings.embed_batch).queries(["预热"])  # model load is not ingest
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

    from kb.eval_runner import _llama_embedding
    from kb.ingest import pipeline
    from kb.store import open_collection

    emb = _llama_embedding(settings)
    t0 = time.perf_counter()
    docs = [LIDocument(text="\n".join(s.text for s in d.sections), metadata={"doc_id": d.doc_id})
            for p in paths for d in pipeline._file_docs(p, p.read_bytes(), None)[0]]
    store = ChromaVectorStore(chroma_collection=open_collection(settings.home / "llamaindex", name="llamaindex"))
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=emb, transformations=[SentenceSplitter()])
    n = len(index.index_struct.nodes_dict) or store._collection.count()
    return _rates(n, pdf_pages(paths), time.perf_counter() - t0)
