"""Need <-> result matching: title and description similarity, shared technical terms, fit reasons.

The candidate set is small (hundreds to thousands of records), so every candidate is scored
exactly: no ANN index, vectors computed from manifest text and cached per process.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import BadInputError, NotFoundError
from kb.models import Match, MatchQuery, MatchResponse, Reason, content_hash
from kb.search.highlight import spans
from kb.search.hybrid import Searcher, clean_query
from kb.settings import Settings
from kb.text import jieba_tokens, split_sentences

# Weights measured on eval/cbm/parts/need_pairs_*.jsonl (see eval/match_eval.py).
W_TITLE = 0.3  # titles are terse: a weaker but independent view of the candidate
W_DESC = 0.7
W_TERMS = 0.3  # share of the score from shared technical terms
FIELD_BONUS = 0.01  # same field nudges the score; TRL and region are shown but not scored, because
# engineers' labels accept less mature or out-of-area results and penalising them lost recall
GENERIC_DF = 0.15  # a term in more than this share of records is too generic to show as a reason
GENERAL_FREQ = 2000  # jieba dictionary frequency above which a word is everyday Chinese, not jargon
MAX_SHOWN_TERMS = 8
_PAREN = re.compile(r"[（(][^）)]*[）)]")

_VEC_CACHE: dict[tuple[str, str, str], np.ndarray] = {}  # (model, side, text hash) -> unit vector
CACHE_MAX = 50_000
_TERM_CACHE: dict[str, frozenset[str]] = {}


@dataclass(frozen=True)
class Record:
    """A need or result as matching sees it: title, body text (description + keywords), metadata."""

    doc_id: str
    kind: str
    title: str
    body: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"

    @property
    def trl(self) -> int | None:
        v = self.meta.get("trl")
        return int(v) if isinstance(v, (int, float)) or (isinstance(v, str) and v.isdigit()) else None

    def get(self, key: str) -> str:
        return str(self.meta.get(key) or "")


# ---- loading -------------------------------------------------------------------------------


def join_chunks(texts: Iterable[str]) -> str:
    """Chunk texts of one record back into one text, dropping sentences repeated by chunk overlap."""
    seen: set[str] = set()
    out: list[str] = []
    for t in texts:
        for s in split_sentences(t):
            if s not in seen:
                seen.add(s)
                out.append(s)
    return "".join(s if s[-1:] in "。！？；!?;" else s + "\n" for s in out).strip()


def load_records(searcher: Searcher, kind: str) -> dict[str, Record]:
    """Every record of a kind from the manifest, in id order."""
    db = searcher.manifest.db
    rows = db.execute(
        "SELECT d.doc_id, d.title, d.meta, c.text FROM documents d JOIN chunks c USING(doc_id) "
        "WHERE d.kind=? ORDER BY d.doc_id, c.ord", (kind,))
    parts: dict[str, tuple[str, str, list[str]]] = {}
    for r in rows:
        parts.setdefault(r[0], (r[1], r[2], []))[2].append(r[3])
    return {i: Record(i, kind, t, join_chunks(chunks), json.loads(m)) for i, (t, m, chunks) in parts.items()}


# ---- scoring (pure) ------------------------------------------------------------------------


def terms(text: str) -> frozenset[str]:
    """Technical-term candidates: jieba words (CBM dictionary) of 2+ characters, no bare numbers."""
    key = content_hash(text)
    got = _TERM_CACHE.get(key)
    if got is None:
        if len(_TERM_CACHE) > CACHE_MAX:
            _TERM_CACHE.clear()
        got = frozenset(t for t in jieba_tokens(text) if len(t) >= 2 and not t.replace(".", "").isdigit())
        _TERM_CACHE[key] = got
    return got


def idf(term_sets: list[frozenset[str]]) -> dict[str, float]:
    """Smoothed inverse document frequency, ln((N + 1) / (df + 0.5))."""
    df: dict[str, int] = {}
    for s in term_sets:
        for t in s:
            df[t] = df.get(t, 0) + 1
    n = len(term_sets)
    return {t: math.log((n + 1) / (d + 0.5)) for t, d in df.items()}


def term_overlap(q: frozenset[str], c: frozenset[str], weights: dict[str, float]) -> float:
    """IDF-weighted overlap, |q ∩ c|_w / sqrt(|q|_w · |c|_w) (a binary cosine)."""
    shared = sum(weights.get(t, 0.0) for t in q & c)
    norm = math.sqrt(sum(weights.get(t, 0.0) for t in q) * sum(weights.get(t, 0.0) for t in c))
    return shared / norm if norm else 0.0


def semantic(title_sim: float, desc_sim: float) -> float:
    """Weighted mean of the query's cosine with the title vector and with the description vector."""
    return (W_TITLE * title_sim + W_DESC * desc_sim) / (W_TITLE + W_DESC)


def combine(sem: float, lex: float, adjust: float) -> float:
    """Final score: (1 - W_TERMS)·semantic + W_TERMS·terms + fit adjustments."""
    return (1 - W_TERMS) * sem + W_TERMS * lex + adjust


@lru_cache(maxsize=1)
def _vocab() -> tuple[dict[str, int], frozenset[str]]:
    """jieba's general-language word frequencies and the words of our CBM dictionary."""
    jieba_tokens("煤层气")  # loads jieba with the CBM user dictionary
    import jieba

    lines = resources.files("kb.resources").joinpath("cbm_userdict.txt").read_text(encoding="utf-8").splitlines()
    return jieba.dt.FREQ, frozenset(w.split()[0] for w in lines if w.strip())


def technical(word: str) -> bool:
    """A CBM dictionary word, or one that is rare in general Chinese (so 钻具 yes, 组织/一个 no).

    Only for display: scoring uses every word, IDF-weighted, which measured better.
    """
    freq, cbm = _vocab()
    return word in cbm or (freq.get(word) or 0) < GENERAL_FREQ


def shown_terms(shared: frozenset[str], weights: dict[str, float], n_docs: int) -> list[str]:
    """Shared terms worth showing: technical, not generic here, not inside a longer shown term, rarest first."""
    # a shared term is in 2+ records by definition; small pools must still show some
    floor = math.log((n_docs + 1) / (max(GENERIC_DF * n_docs, 3) + 0.5))
    keep = [t for t in shared if weights.get(t, 0.0) >= floor and technical(t)]
    keep = [t for t in keep if not any(t != o and t in o for o in keep)]
    return sorted(keep, key=lambda t: (-weights.get(t, 0.0), -len(t), t))[:MAX_SHOWN_TERMS]


def highlight(text: str, marked: list[str]) -> str:
    """HTML-escaped text with the given terms wrapped in <mark>."""
    out: list[str] = []
    pos = 0
    for s, e in spans(text, sorted(marked, key=len, reverse=True)):
        out += [html.escape(text[pos:s]), "<mark>", html.escape(text[s:e]), "</mark>"]
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


# ---- reasons (pure) ------------------------------------------------------------------------

_ROLE = {"need": "需求", "result": "成果"}


def _area(region: str) -> str:
    return _PAREN.sub("", region).strip()


def same_area(a: str, b: str) -> bool:
    """Same place: one name inside the other, or a shared prefix beyond the province (山西沁水…)."""
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


def score_reason(parts: dict[str, float]) -> Reason:
    text = (f"综合得分 {parts['score']:.3f} = 语义相似 {parts['semantic']:.3f}（标题 {parts['title']:.3f}、"
            f"描述 {parts['description']:.3f}）× {1 - W_TERMS:.2f} + 术语重合 {parts['terms']:.3f} × {W_TERMS:.2f}"
            + (f" + 领域加分 {parts['adjust']:.3f}" if parts["adjust"] else ""))
    return reason("score", text, **parts)


# ---- the matcher (I/O at the edges) --------------------------------------------------------

TARGET = {"need": "result", "result": "need", "text": "result"}


@dataclass(frozen=True)
class Filters:
    """Hard filters on candidates: TRL at least ``min_trl``, exact ``field``, ``region`` contains."""

    min_trl: int | None = None
    field: str | None = None
    region: str | None = None

    def check(self) -> Filters:
        if self.min_trl is not None and not 1 <= self.min_trl <= 9:
            raise BadInputError(f"min_trl must be 1-9, got {self.min_trl}")
        for name in ("field", "region"):
            v = getattr(self, name)
            if v is not None and not v.strip():
                raise BadInputError(f"{name} filter is empty")
        return self

    def keep(self, r: Record) -> bool:
        if self.min_trl is not None and (r.trl is None or r.trl < self.min_trl):
            return False
        if self.field and r.get("field") != self.field.strip():
            return False
        return not self.region or self.region.strip() in r.get("region")


class Matcher:
    """Scores needs against results (and back) with the Searcher's manifest and embedder."""

    def __init__(self, settings: Settings, searcher: Searcher | None = None) -> None:
        self.searcher = searcher or Searcher(settings)

    def records(self, kind: str) -> dict[str, Record]:
        return load_records(self.searcher, kind)

    def _vectors(self, texts: list[str], side: str) -> np.ndarray:
        """Unit vectors for texts, embedded once per process (keyed by model, side and content)."""
        emb = self.searcher.embedder
        if len(_VEC_CACHE) > CACHE_MAX:  # free-text queries would grow it without end
            _VEC_CACHE.clear()
        keys = [(emb.name, side, content_hash(t)) for t in texts]
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in _VEC_CACHE}.items())
        if missing:
            embed = emb.queries if side == "query" else emb.passages
            for (k, _), v in zip(missing, embed([t for _, t in missing]), strict=True):
                _VEC_CACHE[k] = v / (np.linalg.norm(v) or 1.0)
        return np.stack([_VEC_CACHE[k] for k in keys]) if keys else np.zeros((0, emb.dim), dtype=np.float32)

    def match(self, *, need_id: str | None = None, result_id: str | None = None, text: str | None = None,
              top_k: int = 10, filters: Filters | None = None) -> MatchResponse:
        """Matches for exactly one of a need id, a result id or free text."""
        given = [(m, v) for m, v in (("need", need_id), ("result", result_id), ("text", text)) if v is not None]
        if len(given) != 1:
            raise BadInputError("give exactly one of need_id, result_id or text")
        if not 1 <= top_k <= 1000:
            raise BadInputError("top_k must be between 1 and 1000")
        mode, value = given[0]
        flt = (filters or Filters()).check()
        query = self._query(mode, value)
        cands = self.records(TARGET[mode])
        matches = self.rank(query, cands, flt, top_k, self.weights())
        q = MatchQuery(mode=mode, id=None if mode == "text" else value, title=query.title or None,
                       text=query.text.strip(), target=TARGET[mode], top_k=top_k, **asdict(flt))
        return MatchResponse(query=q, matches=matches)

    def _query(self, mode: str, value: str) -> Record:
        if mode == "text":
            return Record("", "text", "", clean_query(value))
        rec = self.records(mode).get(value.strip())
        if rec is None:
            raise NotFoundError(f"no {mode} with id {value!r} in the index")
        return rec

    def weights(self) -> tuple[dict[str, float], int]:
        """Term weights over needs and results together, so both directions share one vocabulary."""
        sets = [terms(r.text) for kind in ("need", "result") for r in self.records(kind).values()]
        return idf(sets), len(sets)

    def rank(self, query: Record, cands: dict[str, Record], flt: Filters, top_k: int,
             weights: tuple[dict[str, float], int]) -> list[Match]:
        """Score every candidate that passes the filters; best ``top_k`` with reasons."""
        pool = [c for c in cands.values() if c.doc_id != query.doc_id and flt.keep(c)]
        if not pool:
            return []
        qv = self._vectors([query.text], "query")[0]
        tsim = self._vectors([c.title for c in pool], "passage") @ qv
        dsim = self._vectors([c.body for c in pool], "passage") @ qv
        qt = terms(query.text)
        scored = []
        for c, ts, ds in zip(pool, tsim, dsim, strict=True):
            lex = term_overlap(qt, terms(c.text), weights[0])
            field_r, adjust = field_reason(query if query.kind != "text" else None, c)
            sem = semantic(float(ts), float(ds))
            scored.append((combine(sem, lex, adjust), c, sem, float(ts), float(ds), lex, adjust, field_r))
        scored.sort(key=lambda x: (-x[0], x[1].doc_id))
        return [self._match(query, s, weights, flt) for s in scored[:top_k]]

    @staticmethod
    def _match(query: Record, s: tuple[Any, ...], weights: tuple[dict[str, float], int], flt: Filters) -> Match:
        score, c, sem, ts, ds, lex, adjust, field_r = s
        q = None if query.kind == "text" else query
        parts = {"score": round(score, 4), "semantic": round(sem, 4), "title": round(ts, 4),
                 "description": round(ds, 4), "terms": round(lex, 4), "adjust": round(adjust, 4)}
        shown = shown_terms(terms(query.text) & terms(c.text), *weights)
        reasons = [terms_reason(shown, c), field_r, trl_reason(q, c, flt.min_trl), region_reason(q, c), score_reason(parts)]
        return Match(doc_id=c.doc_id, title=c.title, kind=c.kind, score=parts["score"], reasons=reasons, text=c.body,
                     parts=parts, field=c.get("field") or None, trl=c.trl, region=c.get("region") or None)

    def match_all_needs(self, top_k: int, filters: Filters | None = None,
                        progress: Callable[[Iterable[Record]], Iterable[Record]] = iter) -> list[tuple[Record, list[Match]]]:
        """Every need with its top-k results (the batch export)."""
        flt = (filters or Filters()).check()
        needs, results = self.records("need"), self.records("result")
        weights = self.weights()
        return [(n, self.rank(n, results, flt, top_k, weights)) for n in progress(needs.values())]

    def close(self) -> None:
        self.searcher.close()


# ---- batch export --------------------------------------------------------------------------

EXPORT_HEADERS = ("需求编号", "需求名称", "排名", "成果编号", "成果名称", "综合得分",
                  "语义相似", "标题相似", "描述相似", "术语重合", "领域加分", "匹配理由")
EXPORT_FORMATS = (".xlsx", ".csv")


def export_rows(pairs: list[tuple[Record, list[Match]]]) -> list[list[Any]]:
    """One row per need x match, reasons joined into one readable cell."""
    rows: list[list[Any]] = []
    for need, matches in pairs:
        for rank, m in enumerate(matches, start=1):
            p = m.parts
            rows.append([need.doc_id, need.title, rank, m.doc_id, m.title, m.score, p["semantic"], p["title"],
                         p["description"], p["terms"], p["adjust"], "；".join(r.text for r in m.reasons)])
    return rows


def write_table(path: Path, rows: list[list[Any]]) -> None:
    """Rows under EXPORT_HEADERS as .xlsx (openpyxl) or .csv (UTF-8 with BOM, so Excel reads Chinese)."""
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise BadInputError(f"output must end in {' or '.join(EXPORT_FORMATS)}, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(EXPORT_HEADERS)
            w.writerows(rows)
        return
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "需求成果匹配"
    ws.append(list(EXPORT_HEADERS))
    for r in rows:
        ws.append(r)
    ws.freeze_panes = "A2"
    wb.save(path)
