"""Need <-> result matching: candidates scored exactly (no ANN index), reasons attached.

The candidate set is small (hundreds to thousands of records), so every candidate is scored
exactly, with vectors computed from manifest text and cached per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from kb.errors import BadInputError, NotFoundError
from kb.models import Match, MatchQuery, MatchResponse, content_hash
from kb.search.hybrid import Searcher
from kb.search.match.reasons import (
    field_reason,
    problems_reason,
    region_reason,
    score_reason,
    terms_reason,
    trl_reason,
)
from kb.search.match.records import Record, load_records
from kb.search.match.scoring import (
    CACHE_MAX,
    Scored,
    combine,
    idf,
    match_calibration,
    semantic,
    shown_terms,
    term_overlap,
    terms,
)
from kb.search.match.threshold import strong_enough
from kb.search.query import clean_query
from kb.settings import Settings

_VEC_CACHE: dict[tuple[str, str, str], np.ndarray] = {}  # (model, side, text hash) -> unit vector


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

    def __init__(self, settings: Settings, searcher: Searcher | None = None, *, thesaurus: bool = True) -> None:
        self.searcher = searcher or Searcher(settings)
        self.thesaurus = thesaurus  # off: results are not expanded with the problems they solve (evaluation)

    def records(self, kind: str) -> dict[str, Record]:
        return load_records(self.searcher.manifest, kind, self.thesaurus)

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
        query = self.query(mode, value)
        cands = self.records(TARGET[mode])
        matches = self.rank(query, cands, flt, top_k, self.weights())
        q = MatchQuery(mode=mode, id=None if mode == "text" else value, title=query.title or None,
                       text=query.text.strip(), target=TARGET[mode], top_k=top_k, **asdict(flt))
        return MatchResponse(query=q, matches=matches, strong_match=bool(matches) and matches[0].strong)

    def query(self, mode: str, value: str) -> Record:
        """The record a query stands for: a need, result or expert by id, or free text (a record without an id)."""
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

    def candidates(self, query: Record, cands: dict[str, Record], weights: tuple[dict[str, float], int],
                   ) -> list[Scored]:
        """Every candidate but the query itself, scored (raw parts) and standardised against that pool."""
        pool = [c for c in cands.values() if c.doc_id != query.doc_id]
        if not pool:
            return []
        cal = match_calibration()
        qv = self._vectors([query.text], "query")[0]
        tsim = self._vectors([c.title for c in pool], "passage") @ qv
        dsim = self._vectors([c.body for c in pool], "passage") @ qv
        psim = self._problem_sims(pool, qv)
        qt = terms(query.text)
        out = []
        for c, ts, ds, ps in zip(pool, tsim, dsim, psim, strict=True):
            lex = term_overlap(qt, terms(c.text + "\n" + "；".join(c.problems)), weights[0])
            field_r, adjust = field_reason(query if query.kind != "text" else None, c)
            sem = semantic(float(ts), float(ds))
            out.append(Scored(c, combine(sem, lex, adjust), sem, float(ts), float(ds), ps, lex, adjust, field_r))
        ss = cal.rank_scores(out)
        order = sorted(range(len(ss)), key=lambda j: -ss[j])
        for j, (x, sc) in enumerate(zip(out, ss, strict=True)):
            best_other = ss[order[1]] if j == order[0] and len(order) > 1 else ss[order[0]]
            x.z, x.lead = sc, sc - best_other  # lead > 0 only for the best candidate: its margin over the next
            x.probability = cal.probability(x.z, x.lead)
        return out

    def _problem_sims(self, pool: list[Record], qv: np.ndarray) -> list[float | None]:
        """Per candidate, the query's cosine with the closest problem its technologies solve (None: none known)."""
        texts = sorted({p for c in pool for p in c.problems})
        if not texts:
            return [None] * len(pool)
        sims = dict(zip(texts, (self._vectors(texts, "passage") @ qv).tolist(), strict=True))
        return [max(sims[p] for p in c.problems) if c.problems else None for c in pool]

    def rank(self, query: Record, cands: dict[str, Record], flt: Filters, top_k: int,
             weights: tuple[dict[str, float], int]) -> list[Match]:
        """Score every candidate (standardised against all of them), keep those passing the filters; best
        ``top_k`` with reasons."""
        scored = [x for x in self.candidates(query, cands, weights) if flt.keep(x.cand)]
        scored.sort(key=lambda x: (-x.z, x.cand.doc_id))
        return [self._match(query, s, weights, flt) for s in scored[:top_k]]

    @staticmethod
    def _match(query: Record, s: Scored, weights: tuple[dict[str, float], int], flt: Filters) -> Match:
        c, q = s.cand, None if query.kind == "text" else query
        parts = {"score": round(s.probability, 4), "raw": round(s.raw, 4), "z": round(s.z, 3), "lead": round(s.lead, 3),
                 "semantic": round(s.semantic, 4), "title": round(s.title, 4), "description": round(s.description, 4),
                 "problems": None if s.problem is None else round(s.problem, 4), "terms": round(s.terms, 4),
                 "adjust": round(s.adjust, 4)}
        shown = shown_terms(terms(query.text) & terms(c.text), *weights)
        reasons = [terms_reason(shown, c), s.field_reason, trl_reason(q, c, flt.min_trl), region_reason(q, c),
                   score_reason(parts)]
        if s.problem is not None and c.problems:
            reasons.insert(1, problems_reason(c.problems))
        return Match(doc_id=c.doc_id, title=c.title, kind=c.kind, score=round(s.probability, 4), reasons=reasons, text=c.body,
                     parts={k: v for k, v in parts.items() if v is not None}, field=c.get("field") or None, trl=c.trl,
                     region=c.get("region") or None, strong=strong_enough(s.probability))

    def match_all_needs(self, top_k: int, filters: Filters | None = None,
                        progress: Callable[[Iterable[Record]], Iterable[Record]] = iter,
                        need_ids: list[str] | None = None) -> list[tuple[Record, list[Match]]]:
        """Every need (or the ``need_ids``, in that order) with its top-k results (the batch export)."""
        flt = (filters or Filters()).check()
        needs, results = self.records("need"), self.records("result")
        if need_ids is not None:
            missing = [i for i in need_ids if i not in needs]
            if missing:
                raise NotFoundError(f"no need with id {missing[0]!r} in the index")
            needs = {i: needs[i] for i in need_ids}
        weights = self.weights()
        return [(n, self.rank(n, results, flt, top_k, weights)) for n in progress(needs.values())]

    def close(self) -> None:
        self.searcher.close()


