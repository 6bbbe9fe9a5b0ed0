"""Compute (or load) the cached per-query candidate lists of datasets (run: python -m eval.candidates DIR...)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from kb.evaluation.candidates import CandidateSet, cache_path, cached
from kb.evaluation.metrics import home_for
from kb.evaluation.runner import build_index
from kb.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (ROOT / "eval" / "cbm", ROOT.parent / "shared" / "data" / "cmrc2018", ROOT.parent / "shared" / "data" / "csl_sci")


OFFTOPIC = ROOT / "eval" / "offtopic" / "queries.jsonl"


def index(dataset: Path, settings: Settings, queries: Path) -> Settings:
    """The dataset's eval index settings, built (or brought up to date) only when the candidates of ``queries``
    are not cached yet: cached lists are read as the index that produced them left them (delete the
    candidates-*.json.gz files to recompute them after a change to reading or chunking)."""
    es = _unbuilt(dataset, settings)
    return es if cache_path(es, queries).exists() else build_index(dataset, ROOT / "corpus", settings, None)


def _unbuilt(dataset: Path, settings: Settings) -> Settings:
    """Where build_index keeps the dataset's index, without building it."""
    source = dataset / "corpus.jsonl" if (dataset / "corpus.jsonl").exists() else ROOT / "corpus"
    return settings.model_copy(update={"home": home_for(settings.home / "eval", source, settings)})


def load(dataset: Path, settings: Settings | None = None, quiet: bool = False, queries: Path | None = None) -> CandidateSet:
    """Candidates of a dataset's queries (or of ``queries``, e.g. the off-topic ones) over its index."""
    queries = queries or dataset / "queries.jsonl"
    return cached(index(dataset, settings or get_settings(), queries), queries, (lambda xs: xs) if quiet else
                  (lambda xs: tqdm(xs, desc=dataset.name, file=sys.stderr, mininterval=10)))


def cross(index_of: Path, queries_of: Path, n: int = 300, settings: Settings | None = None) -> CandidateSet:
    """Candidates of ``n`` queries of one dataset over another dataset's index: real queries with no
    answer there (the calibration learns from them what an unanswerable query looks like)."""
    settings = settings or get_settings()
    path = _unbuilt(index_of, settings).home / f"cross-{queries_of.name}-{n}.jsonl"
    if not path.exists():
        build_index(index_of, ROOT / "corpus", settings, None)
        rows = [json.loads(x) for x in (queries_of / "queries.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
        step = max(1, len(rows) // n)
        path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "relevant_ids": [], "type": "cross"},
                                           ensure_ascii=False) + "\n" for r in rows[::step][:n]), encoding="utf-8")
    return cached(index(index_of, settings, path), path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("datasets", nargs="*", type=Path, default=list(DATASETS))
    for ds in p.parse_args().datasets:
        cs = load(ds)
        print(ds.name, len(cs.items), "queries,", len(cs.chunks), "candidate chunks")


if __name__ == "__main__":
    main()
