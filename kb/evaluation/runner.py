"""`kb eval`: build (or reuse) an index for a dataset and run every method over its queries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from kb.embed import Embedder, load_embedder
from kb.errors import BadInputError, BadQueryError
from kb.evaluation.metrics import BASELINE, HITS, METHODS, Query, Runner, evaluate, home_for, load_queries, passage_documents
from kb.index.indexes import open_indexes
from kb.index.recovery import rebuild_lexical
from kb.ingest.pipeline import ingest, ingest_documents
from kb.models import Document, SearchHit
from kb.search.hybrid import Searcher
from kb.settings import Settings

Progress = Callable[[Iterable[Any]], Iterable[Any]]


def dataset_documents(dataset: Path, corpus_dir: Path) -> tuple[list[Document] | None, list[Path]]:
    """A dataset's passages (corpus.jsonl), or the live corpus folder when it has none."""
    if (dataset / "corpus.jsonl").exists():
        return passage_documents(dataset / "corpus.jsonl"), []
    if not corpus_dir.exists():
        raise BadInputError(f"{dataset} has no corpus.jsonl and the live corpus {corpus_dir} is missing")
    return None, [corpus_dir]


def build_index(dataset: Path, corpus_dir: Path, settings: Settings, progress: Progress | None) -> Settings:
    """Settings pointing at a cached eval index for the dataset, built if needed."""
    docs, paths = dataset_documents(dataset, corpus_dir)
    source = dataset / "corpus.jsonl" if docs is not None else corpus_dir
    eval_settings = settings.model_copy(update={"home": home_for(settings.home / "eval", source, settings)})
    if docs is not None:
        ingest_documents(docs, eval_settings, str(source.resolve()), progress=progress)
        if eval_settings.manifest_path.exists():
            _ensure_lexical(eval_settings)
    else:
        rep = ingest(paths, eval_settings)
        if rep.failed:
            raise BadInputError(f"corpus failed to ingest: {rep.failed[0].error}")
        _ensure_lexical(eval_settings)
    return eval_settings


def _ensure_lexical(settings: Settings) -> None:
    """BM25 is cheap to rebuild: do it when the cached index used another tokenization."""
    ix = open_indexes(settings)
    if (ix.manifest.get_meta("lexical"), ix.manifest.get_meta("lexical_translate")) != (
            settings.lexical, str(settings.lexical_translate).lower()):
        rebuild_lexical(ix)
    ix.close()


def searcher_runner(searcher: Searcher, method: str) -> Runner:
    def run(text: str, filters: dict[str, str]) -> list[SearchHit]:
        try:
            # the ranking is judged whole: the relevance floor (found=false) trades recall for honesty on
            # off-topic queries and is measured on its own (eval/fusion_fit.py, docs/EVAL.md)
            return searcher.search(text, top_k=HITS, filters=filters, method=method, min_relevance=0.0).hits
        except BadQueryError:
            return []  # an unsearchable query (e.g. punctuation only) scores zero, like no hits

    return run


def llama_embedding(settings: Settings) -> Any:
    """Our embedder behind llama-index's BaseEmbedding interface (query/passage sides kept)."""
    from llama_index.core.embeddings import BaseEmbedding

    emb: Embedder = load_embedder(settings)

    class KBEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return [float(x) for x in emb.queries([query])[0]]

        def _get_text_embedding(self, text: str) -> list[float]:
            return [float(x) for x in emb.passages([text])[0]]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return np.asarray(emb.passages(texts)).tolist()  # type: ignore[no-any-return]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return KBEmbedding(model_name=emb.name, embed_batch_size=settings.embed_batch)


def baseline_runner(searcher: Searcher, settings: Settings) -> Runner:
    """llama-index's default pipeline: SentenceSplitter + VectorStoreIndex, dense only, same model.

    It is fed the same documents section by section (from our manifest) so hits can be judged.
    """
    from llama_index.core import Document as LIDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    m = searcher.manifest
    by_section: dict[tuple[str, str], list[str]] = {}
    for r in m.iter_chunks():
        by_section.setdefault((r["doc_id"], r["section"]), []).append(r["text"])
    docs = [LIDocument(text="\n".join(t), metadata={"doc_id": d, "section": s}) for (d, s), t in by_section.items()]
    index = VectorStoreIndex.from_documents(docs, embed_model=llama_embedding(settings),
                                            transformations=[SentenceSplitter()])
    retriever = index.as_retriever(similarity_top_k=HITS)
    kinds = {d: (m.document(d) or {}).get("kind", "") for d, _ in by_section}

    def run(text: str, filters: dict[str, str]) -> list[SearchHit]:
        if not any(ch.isalnum() for ch in text):
            return []  # llama-index embeds no empty query (its vector is None); ours scores it as no hits too
        out = []
        for n in retriever.retrieve(text):
            md = n.node.metadata
            if filters.get("kind") and kinds.get(md["doc_id"]) != filters["kind"]:
                continue  # same restriction as ours, applied after retrieval
            out.append(SearchHit(id=n.node.node_id, doc_id=md["doc_id"], score=float(n.score or 0), text="",
                                 title="", kind="", source="", section=md["section"], page=None))
        return out

    return run


def run_eval(dataset: Path, settings: Settings, methods: list[str], corpus_dir: Path,
             limit: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The `kb eval` result for one dataset directory."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise BadInputError(f"unknown methods {sorted(unknown)}; valid: {', '.join(METHODS)}")
    qpath = dataset / "queries.jsonl"
    if not qpath.exists():
        raise BadInputError(f"{dataset} has no queries.jsonl")
    queries: list[Query] = load_queries(qpath, limit)
    eval_settings = build_index(dataset, corpus_dir, settings, progress)
    searcher = Searcher(eval_settings)
    runners: dict[str, Runner] = {}
    for m in methods:
        runners[m] = baseline_runner(searcher, eval_settings) if m == BASELINE else searcher_runner(searcher, m)
    result = evaluate(queries, runners, progress=progress)
    by_type = {t: {"hybrid": v["hybrid"]} if "hybrid" in v else v for t, v in result["by_type"].items()}
    return {"dataset": str(dataset), "queries": result["queries"], "methods": result["methods"],
            "by_type": by_type, "by_type_all_methods": result["by_type"]}
