"""Why a candidate matches (pure): shared terms, field, TRL, region and the score, as readable Chinese sentences."""

from __future__ import annotations

import html
import re
from typing import Any

from kb.lang.places import same_city
from kb.models import Reason
from kb.search.match.records import Record
from kb.search.match.scoring import FIELD_BONUS, W_TERMS, highlight

_PAREN = re.compile(r"[（(][^）)]*[）)]")

_ROLE = {"need": "需求", "result": "成果", "expert": "专家团队"}


def _area(region: str) -> str:
    return _PAREN.sub("", region).strip()


def same_area(a: str, b: str) -> bool:
    """Same place: a shared city on the division hierarchy (沁水盆地 and 山西晋城: yes, kb/lang/places.py), else
    one name inside the other, or a shared prefix beyond the province (山西沁水…)."""
    if a.strip() and b.strip() and (city := same_city(a, b)) is not None:
        return city
    a, b = _area(a), _area(b)
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return k >= 4


def reason(kind: str, text: str, **data: Any) -> Reason:
    """A reason: a readable Chinese sentence plus the data behind it."""
    return Reason.model_validate({"type": kind, "text": text, **data})


def terms_reason(shown: list[str], cand: Record) -> Reason:
    if not shown:
        return reason("terms", "没有共同的专业术语，匹配来自语义相近", terms=[], highlighted=html.escape(cand.body))
    return reason("terms", f"共同技术术语：{'、'.join(shown)}", terms=shown, highlighted=highlight(cand.body, shown))


def field_reason(query: Record | None, cand: Record) -> tuple[Reason, float]:
    """Field fit, and the small bonus a same-field candidate gets."""
    cf, role = cand.get("field"), _ROLE[cand.kind]
    if query is None or not query.get("field") or not cf:
        return reason("field", f"{role}领域：{cf}" if cf else f"{role}未标注领域", match=None, candidate_field=cf), 0.0
    qf = query.get("field")
    if qf == cf:
        return reason("field", f"领域一致：{cf}", match=True, query_field=qf, candidate_field=cf), FIELD_BONUS
    text = f"领域不同：{_ROLE[query.kind]}属于{qf}，{role}属于{cf}"
    return reason("field", text, match=False, query_field=qf, candidate_field=cf), 0.0


def trl_reason(query: Record | None, cand: Record, min_trl: int | None) -> Reason:
    """TRL of the result against the need's minimum acceptable TRL (whichever side each is on)."""
    need, result = (query, cand) if cand.kind == "result" else (cand, query)
    rt, nt = (result.trl if result else None), (need.trl if need else None)
    asked = "需求要求的"
    if nt is None and cand.kind == "result" and min_trl is not None:
        nt, asked = min_trl, "筛选条件要求的"  # free text: the only requirement is the filter
    data = {"result_trl": rt, "need_trl": nt}
    if rt is None:
        return reason("trl", "成果未标注技术就绪度（TRL），无法比较成熟度", ok=None, **data)
    if nt is None:
        return reason("trl", f"成果技术就绪度 TRL {rt}", ok=None, **data)
    if rt >= nt:
        more = f"（高出 {rt - nt} 级）" if rt > nt else ""
        return reason("trl", f"成果技术就绪度 TRL {rt}，达到{asked} TRL {nt}{more}", ok=True, gap=rt - nt, **data)
    text = f"成果技术就绪度 TRL {rt}，低于{asked} TRL {nt}（差 {nt - rt} 级），需先做中试或现场验证"
    return reason("trl", text, ok=False, gap=rt - nt, **data)


def region_reason(query: Record | None, cand: Record) -> Reason:
    cr, role = cand.get("region"), _ROLE[cand.kind]
    if query is None or not query.get("region") or not cr:
        return reason("region", f"{role}地区：{cr}" if cr else f"{role}未标注地区", same_area=None, candidate_region=cr)
    qr, qrole = query.get("region"), _ROLE[query.kind]
    data = {"query_region": qr, "candidate_region": cr}
    if same_area(qr, cr):
        return reason("region", f"地区相同或相邻：{role}在{cr}，{qrole}在{qr}，条件相近", same_area=True, **data)
    if "全国" in cr:
        return reason("region", f"{role}适用范围为全国，需核实在{qr}的适用条件", same_area=False, **data)
    return reason("region", f"{role}来自{cr}，{qrole}位于{qr}，需核实地质与工况差异", same_area=False, **data)


def problems_reason(problems: tuple[str, ...]) -> Reason:
    """The plain-language problems the result's technologies solve (technology thesaurus)."""
    return reason("problems", f"该技术解决的典型问题：{'；'.join(problems[:3])}", problems=list(problems))


def score_reason(parts: dict[str, float | None]) -> Reason:
    sem = f"标题 {parts['title']:.3f}、描述 {parts['description']:.3f}" + (
        f"、问题 {parts['problems']:.3f}" if parts.get("problems") is not None else "")
    text = (f"综合得分 {parts['raw']:.3f} = 语义相似 {parts['semantic']:.3f}（{sem}）× {1 - W_TERMS:.2f} + "
            f"术语重合 {parts['terms']:.3f} × {W_TERMS:.2f}" + (f" + 领域加分 {parts['adjust']:.3f}" if parts["adjust"] else "")
            + f"；与全部候选比较的排序分 {parts['z']:.2f}（"
            + (f"领先下一名 {lead:.2f}" if (lead := parts["lead"] or 0.0) >= 0 else f"落后第一名 {-lead:.2f}") + "），"
            f"匹配度（估计能解决需求的把握）{parts['score']:.3f}")
    return reason("score", text, **{k: v for k, v in parts.items() if v is not None})


