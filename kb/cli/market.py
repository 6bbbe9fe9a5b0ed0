"""The technology market: need/result matching."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import remote
from kb.cli.common import emit, progress, settings
from kb.models import MatchResponse


@click.command()
@click.option("--need-id", help="Match this need (id) against the results.")
@click.option("--result-id", help="Match this result (id) against the needs.")
@click.option("--text", help="Match free text (an engineer's description of a problem) against the results.")
@click.option("--all-needs", is_flag=True, help="Match every need; write the table given by --out.")
@click.option("--top-k", "-k", default=5, show_default=True, type=int, help="Matches per query (1-1000).")
@click.option("--min-trl", type=int, help="Only candidates with TRL at least N (1-9).")
@click.option("--field", help="Only candidates of this field (exact, e.g. 排采).")
@click.option("--region", help="Only candidates whose region contains this text (e.g. 沁水).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="With --all-needs: FILE.xlsx or FILE.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def match(need_id: str | None, result_id: str | None, text: str | None, all_needs: bool, top_k: int,
          min_trl: int | None, field: str | None, region: str | None, out: Path | None, as_json: bool,
          quiet: bool) -> None:
    """Match needs (技术需求) with results (科技成果), with reasons an officer can read.

    Give one of --need-id, --result-id, --text, or --all-needs with --out.
    """
    from kb.errors import BadInputError

    modes = [m for m, v in (("--need-id", need_id), ("--result-id", result_id), ("--text", text),
                            ("--all-needs", all_needs or None)) if v is not None]
    if len(modes) != 1:
        raise BadInputError("give exactly one of --need-id, --result-id, --text or --all-needs")
    if all_needs != (out is not None):
        raise BadInputError("--all-needs and --out go together")
    if not 1 <= top_k <= 1000:
        raise BadInputError("--top-k must be between 1 and 1000")
    s = settings()
    if not all_needs and top_k <= 100:  # a running server answers (and checks) one match, no model loaded here
        body = {"need_id": need_id, "result_id": result_id, "text": text, "top_k": top_k, "min_trl": min_trl,
                "field": field, "region": region}
        if (data := remote.call(s, "/match", body)) is not None:
            _show(MatchResponse.model_validate(data), as_json)
            return
    from kb.search.match import Filters, Matcher, export_rows, write_table

    flt = Filters(min_trl=min_trl, field=field, region=region).check()
    matcher = Matcher(s)
    if all_needs and out is not None:
        pairs = matcher.match_all_needs(top_k, flt, progress=progress(quiet, "match"))
        rows = export_rows(pairs)
        write_table(out, rows)
        summary = {"needs": len(pairs), "rows": len(rows), "out": str(out)}
        if as_json:
            emit(summary)
        else:
            click.echo(f"已写出 {len(pairs)} 条需求的 {len(rows)} 行匹配结果到 {out}")
        return
    _show(matcher.match(need_id=need_id, result_id=result_id, text=text, top_k=top_k, filters=flt), as_json)


def _show(res: MatchResponse, as_json: bool) -> None:
    if as_json:
        emit(res.model_dump())
    else:
        _print_matches(res)


def _print_matches(res: MatchResponse) -> None:
    q = res.query
    what = {"need": "需求", "result": "成果"}
    head = f"{what[q.mode]} {q.id}「{q.title}」" if q.mode != "text" else f"文本「{q.text[:40]}」"
    click.echo(f"{head}的前 {len(res.matches)} 个匹配{what[q.target]}：")
    if not res.matches:
        click.echo("（没有符合条件的匹配）")
    elif not res.strong_match:
        click.echo("暂无把握较大的匹配（no strong match）：以下只是最接近的候选，请核实。")
    for n, m in enumerate(res.matches, start=1):
        click.echo(f"\n{n}. {m.doc_id} {m.title}  匹配度 {m.score:.3f}" + ("" if m.strong else "（把握不大）"))
        for r in m.reasons:
            click.echo(f"   · {r.text}")



COMMANDS = [match]
