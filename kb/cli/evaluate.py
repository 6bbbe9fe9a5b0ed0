"""Measuring: kb eval."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli.common import emit, progress, settings
from kb.evaluation.metrics import METHODS as EVAL_METHODS
from kb.evaluation.metrics import METRICS


@click.command("eval")
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("eval/cbm"),
              show_default=True, help="Directory with queries.jsonl (+ corpus.jsonl, else the live corpus is used).")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default=Path("corpus"), show_default=True,
              help="Live corpus folder for datasets without corpus.jsonl.")
@click.option("--methods", default=",".join(EVAL_METHODS), show_default=True,
              help=f"Comma-separated subset of {', '.join(EVAL_METHODS)}.")
@click.option("--limit", type=click.IntRange(1), help="Only the first N queries (smoke runs).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_cmd(dataset: Path, corpus_dir: Path, methods: str, limit: int | None, as_json: bool, quiet: bool) -> None:
    """Measure Recall@1/5/10, MRR@10 and nDCG@10 of each retrieval method on a labelled dataset.

    The index for a dataset is built once under KB_HOME/eval/ and reused while the data and
    the index-shaping settings stay the same.
    """
    from kb.evaluation.runner import run_eval

    res = run_eval(dataset, settings(), [m.strip() for m in methods.split(",") if m.strip()], corpus_dir,
                   limit=limit, progress=progress(quiet, "eval"))
    if as_json:
        emit(res)
        return
    click.echo(f"{res['dataset']}: {res['queries']} queries")
    click.echo(f"{'method':<22}" + "".join(f"{m:>11}" for m in METRICS))
    for name, vals in res["methods"].items():
        click.echo(f"{name:<22}" + "".join(f"{vals[m]:>11.3f}" for m in METRICS))
    for t, per in res["by_type_all_methods"].items():
        click.echo(f"  {t:<20}" + "".join(f"{per[name]['ndcg@10']:>9.3f} {name}" for name in per))



COMMANDS = [eval_cmd]
