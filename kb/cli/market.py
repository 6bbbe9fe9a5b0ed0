"""The technology market: need/result/expert matching, new arrivals."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kb.cli import remote
from kb.cli.common import emit, progress, settings
from kb.models import MatchResponse

if TYPE_CHECKING:  # imported inside the command: `kb match` against a running server loads no model code
    from kb.index.pairs import PairStore
    from kb.search.match import Filters, Matcher


def parse_time(value: str) -> float:
    """A Unix time or an ISO date/time (local time when it names no zone)."""
    try:
        return float(value)
    except ValueError:
        pass
    from kb.errors import BadInputError

    try:
        return datetime.datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        raise BadInputError(f"--new-since must be a Unix time or an ISO date/time, got {value!r}") from None


@click.command()
@click.option("--need-id", help="Match this need (id) against the results (or experts, see --to).")
@click.option("--result-id", help="Match this result (id) against the needs.")
@click.option("--expert-id", help="Match this expert or team (id) against the needs.")
@click.option("--text", help="Match free text (an engineer's description of a problem) against the results.")
@click.option("--to", "to", type=click.Choice(["result", "expert", "all"]), default="result", show_default=True,
              help="For a need or text: match against results, experts and teams, or both.")
@click.option("--all-needs", is_flag=True, help="Match every need; write the table given by --out.")
@click.option("--new-since", help="New arrivals: records stored after this time (Unix time or ISO) with their "
              "strong matches.")
@click.option("--notify", is_flag=True, help="With --new-since: send the notices not sent before to KB_WEBHOOK_URL.")
@click.option("--top-k", "-k", default=5, show_default=True, type=int, help="Matches per query (1-1000).")
@click.option("--min-trl", type=int, help="Only results with TRL at least N (1-9).")
@click.option("--field", help="Only candidates of this field (exact, e.g. 排采).")
@click.option("--region", help="Only candidates whose region contains this text (e.g. 沁水).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="With --all-needs: FILE.xlsx or FILE.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def match(need_id: str | None, result_id: str | None, expert_id: str | None, text: str | None, to: str,
          all_needs: bool, new_since: str | None, notify: bool, top_k: int, min_trl: int | None, field: str | None,
          region: str | None, out: Path | None, as_json: bool, quiet: bool) -> None:
    """Match needs (技术需求) with results (科技成果) and experts (专家团队), with reasons an officer can read.

    Give one of --need-id, --result-id, --expert-id, --text, --new-since, or --all-needs with --out.
    Pairs marked 不合适 (kb pair) are not suggested again for that need.
    """
    from kb.errors import BadInputError

    given = (("need", need_id), ("result", result_id), ("expert", expert_id), ("text", text),
             ("all", all_needs or None), ("new", new_since))
    modes = [m for m, v in given if v is not None]
    if len(modes) != 1:
        raise BadInputError("give exactly one of --need-id, --result-id, --expert-id, --text, --new-since or --all-needs")
    if all_needs != (out is not None):
        raise BadInputError("--all-needs and --out go together")
    if notify and new_since is None:
        raise BadInputError("--notify goes with --new-since")
    if not 1 <= top_k <= 1000:
        raise BadInputError("--top-k must be between 1 and 1000")
    s = settings()
    mode = modes[0]
    if mode in ("need", "result", "expert", "text") and top_k <= 100:  # a running server answers, no model loaded here
        body = {"need_id": need_id, "result_id": result_id, "expert_id": expert_id, "text": text, "to": to,
                "top_k": top_k, "min_trl": min_trl, "field": field, "region": region}
        if (data := remote.call(s, "/match", {k: v for k, v in body.items() if v is not None})) is not None:
            _show(MatchResponse.model_validate(data), as_json)
            return
    from kb.index.pairs import PairStore
    from kb.search.match import Filters, Matcher
    from kb.search.match.suggest import suggest_open

    flt = Filters(min_trl=min_trl, field=field, region=region).check()
    matcher = Matcher(s)
    with PairStore(s.market_path) as store:
        if mode == "new":
            _new_arrivals(matcher, store, parse_time(str(new_since)), notify, as_json)
        elif mode == "all" and out is not None:
            _batch(matcher, store, top_k, flt, to, out, quiet, as_json)
        else:
            value = str(next(v for m, v in given if m == mode))
            _show(suggest_open(matcher, mode=mode, value=value, to=to, top_k=top_k, filters=flt), as_json)


def _batch(matcher: Matcher, store: PairStore, top_k: int, flt: Filters, to: str, out: Path, quiet: bool,
           as_json: bool) -> None:
    from kb.search.match import export_rows, write_table
    from kb.search.match.pairing import statuses, suggest_all

    pairs = suggest_all(matcher, store, top_k=top_k, filters=flt, to=to, progress=progress(quiet, "match"))
    rows = export_rows(pairs, statuses(store))
    write_table(out, rows)
    if as_json:
        emit({"needs": len(pairs), "rows": len(rows), "out": str(out)})
    else:
        click.echo(f"已写出 {len(pairs)} 条需求的 {len(rows)} 行匹配结果到 {out}")


def _new_arrivals(matcher: Matcher, store: PairStore, since: float, notify: bool, as_json: bool) -> None:
    from kb.search.match.alerts import new_arrivals

    res = new_arrivals(matcher, store, since)
    sent = None
    if notify:
        from kb.integrations.webhook import notify_new

        sent = notify_new(matcher.searcher.settings, since, matcher)
    if as_json:
        emit({**res.model_dump(), **({"webhook": sent} if sent is not None else {})})
        return
    what = {"need": "需求", "result": "成果", "expert": "专家团队"}
    click.echo(f"{len(res.items)} 条新入库或更新的记录（得分 ≥ {res.threshold:.2f} 的匹配）：")
    for item in res.items:
        click.echo(f"\n{what[item.kind]} {item.doc_id}「{item.title}」")
        if not item.matches:
            click.echo("   （没有达到阈值的匹配）")
        for m in item.matches:
            click.echo(f"   · {what.get(m.kind, m.kind)} {m.doc_id} {m.title}  评级 {m.rating}  得分 {m.score:.3f}")
    if sent is not None:
        click.echo(f"\nwebhook：已发送 {sent['sent']} 条，未送达 {sent['pending']} 条")


def _show(res: MatchResponse, as_json: bool) -> None:
    if as_json:
        emit(res.model_dump())
    else:
        _print_matches(res)


WHAT = {"need": "需求", "result": "成果", "expert": "专家团队", "all": "成果和专家团队", "text": "文本"}


def _print_matches(res: MatchResponse) -> None:
    q = res.query
    head = f"{WHAT[q.mode]} {q.id}「{q.title}」" if q.mode != "text" else f"文本「{q.text[:40]}」"
    click.echo(f"{head}的前 {len(res.matches)} 个匹配{WHAT[q.target]}：")
    if not res.matches:
        click.echo("（没有符合条件的匹配）")
    elif not res.strong_match:
        click.echo("暂无把握较大的匹配（no strong match）：以下只是最接近的候选，请核实。")
    for n, m in enumerate(res.matches, start=1):
        org = f"（{m.org}）" if m.org else ""
        kind = f"  [{WHAT.get(m.kind, m.kind)}]" if q.target == "all" else ""
        click.echo(f"\n{n}. {m.doc_id} {m.title}{org}{kind}  评级 {m.rating}  得分 {m.score:.3f}"
                   + ("" if m.strong else "（把握不大）"))
        for r in m.reasons:
            click.echo(f"   · {r.text}")


COMMANDS = [match]
