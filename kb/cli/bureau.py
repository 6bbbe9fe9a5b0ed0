"""The bureau's working commands: match records (kb pair, kb pairs) and unmet needs (kb needs --unmet)."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from kb.cli.common import emit, settings
from kb.index.pairs import STATUSES


def _when(at: float) -> str:
    return datetime.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


@click.command()
@click.option("--need", "need_id", required=True, help="The need's id.")
@click.option("--with", "cand_id", required=True, help="The result's or expert's id.")
@click.option("--status", type=click.Choice(STATUSES), help="New status: 推荐 → 已联系 → 洽谈中 → 已签约 | 不合适.")
@click.option("--note", default="", help="A note kept with this change.")
@click.option("--by", default="cli", show_default=True, help="Who made the change (kept in the history).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pair(need_id: str, cand_id: str, status: str | None, note: str, by: str, as_json: bool) -> None:
    """Record a match (对接记录): set a need ↔ result/expert pair's status, or show its history.

    A pair marked 不合适 is not suggested again for that need; 已签约 closes the need.
    """
    from kb.index.manifest import Manifest
    from kb.index.pairs import PairStore
    from kb.search.match.pairing import record_pair

    s = settings()
    with PairStore(s.market_path) as store:
        if status is None:
            row = store.get(need_id, cand_id)
            out = {**(row or {}), "history": store.history(need_id, cand_id)}
        else:
            m = Manifest(s.manifest_path)
            try:
                out = record_pair(m, store, need_id=need_id, cand_id=cand_id, status=status, note=note, by=by)
            finally:
                m.close()
    if as_json:
        emit(out)
        return
    if not out.get("history"):
        click.echo(f"{need_id} ↔ {cand_id}：还没有对接记录")
    for h in out["history"]:
        click.echo(f"{_when(h['at'])}  {h['status']}  {h['by']}" + (f"  {h['note']}" if h["note"] else ""))


@click.command()
@click.option("--need", "need_id", help="Only this need's pairs.")
@click.option("--status", type=click.Choice(STATUSES), help="Only pairs of this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {summary, pairs}.")
def pairs(need_id: str | None, status: str | None, as_json: bool) -> None:
    """Match records: the pairs, and a summary by status and by the need's field."""
    from kb.index.manifest import Manifest
    from kb.index.pairs import PairStore
    from kb.search.match.pairing import summary

    s = settings()
    m = Manifest(s.manifest_path)
    try:
        with PairStore(s.market_path) as store:
            rows, summ = store.pairs(need_id, status), summary(m, store)
    finally:
        m.close()
    if as_json:
        emit({"summary": summ, "pairs": rows})
        return
    click.echo(f"共 {summ['pairs']} 对：" + "，".join(f"{k} {v}" for k, v in summ["by_status"].items()))
    for field, counts in summ["by_field"].items():
        click.echo(f"  {field}：" + "，".join(f"{k} {v}" for k, v in counts.items() if v))
    for r in rows:
        click.echo(f"{r['need_id']} ↔ {r['cand_id']}  {r['status']}  {_when(r['at'])}  {r['by']}"
                   + (f"  {r['note']}" if r["note"] else ""))


@click.command()
@click.option("--unmet", is_flag=True, required=True, help="Needs with no result or expert above the threshold.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write them to FILE.xlsx or FILE.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def needs(unmet: bool, out: Path | None, as_json: bool) -> None:
    """Unmet needs, grouped by field: the list for open calls (揭榜挂帅) and the scarce-talent catalogue."""
    from kb.index.pairs import PairStore
    from kb.search.match import Matcher
    from kb.search.match.unmet import unmet_needs, write_unmet

    s = settings()
    matcher = Matcher(s)
    try:
        with PairStore(s.market_path) as store:
            res = unmet_needs(matcher, store)
    finally:
        matcher.close()
    if out is not None:
        write_unmet(out, res)
    if as_json:
        emit(res.model_dump())
        return
    click.echo(f"{res.needs} 条未签约需求中，{res.unmet} 条没有得分 ≥ {res.threshold:.2f} 的成果或专家团队：")
    for field, items in res.by_field.items():
        click.echo(f"\n{field}（{len(items)}）")
        for u in items:
            best = f"  最接近：{u.best_id} {u.best_score:.3f}" if u.best_id and u.best_score is not None else ""
            click.echo(f"  {u.doc_id} {u.title}{best}")
    if out is not None:
        click.echo(f"\n已写出到 {out}")


COMMANDS = [pair, pairs, needs]
