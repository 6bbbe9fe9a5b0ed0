"""Need <-> result matching: candidates scored exactly (no ANN index), reasons attached.

The candidate set is small (hundreds to thousands of records), so every candidate is scored
exactly, with vectors computed from manifest text and cached per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kb.errors import BadInputError, NotFoundError
from kb.models import Match, MatchQuery, MatchResponse, content_hash
from kb.search.hybrid import Searcher
from kb.search.match.reasons import field_reason, region_reason, score_reason, terms_reason, trl_reason
from kb.search.match.records import Record, load_records
from kb.search.match.scoring import CACHE_MAX, combine, idf, semantic, shown_terms, term_overlap, terms
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

    def __init__(self, settings: Settings, searcher: Searcher | None = None) -> None:
        self.searcher = searcher or Searcher(settings)

    def records(self, kind: str) -> dict[str, Record]:
        return load_records(self.searcher.manifest, kind)

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
        return MatchResponse(query=q, matches=matches)

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


