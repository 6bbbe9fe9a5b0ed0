"""The words around an answer: messages in the question's language, sentence boundaries, source reference marks."""

from __future__ import annotations

import re

from kb.search.question import language

NOT_FOUND = {
    "zh": "知识库中没有找到足以回答该问题的句子；以下是最接近的段落，请人工核对。",
    "en": "The knowledge base has no sentence that answers this question well enough; the closest passages "
          "are listed below for you to check.",
}
NOTHING = {
    "zh": "知识库中没有与该问题相关的内容。",
    "en": "Nothing in the knowledge base is relevant to this question.",
}
SOURCE_LANGUAGE = {
    "en": ("Source {refs} is in Chinese and is quoted as written.", "Sources {refs} are in Chinese and are quoted as written."),
    "zh": ("引用{refs}为英文原文，按原文引用。", "引用{refs}为英文原文，按原文引用。"),
}
# a source's own reference marks ("[4]", "[2, 3]", "[5-7]") are shown in full-width brackets, so that an
# ASCII [n] in an answer is always ours: citations[n-1]
_SOURCE_REF = re.compile(r"\[(\d+(?:\s*[,，\-–]\s*\d+)*)\]")  # ASCII only: REFERENCE_MARK also takes full-width
_ENDS = tuple("。！？；!?;.…\"”’」』)）]】")


def protect_references(text: str) -> str:
    """"see [4]" -> "see ［4］": a quoted source's reference marks can never be taken for our citations."""
    return _SOURCE_REF.sub(r"［\1］", text)


def starts_sentence(previous: str | None, text: str) -> bool:
    """Whether a chunk's text starts a sentence, given the text of the chunk before it in the document.

    A chunk either repeats the previous one's last sentences (overlap) or goes on where it ended; the text just
    before its start must end a sentence or a line.
    """
    if previous is None:
        return True
    k = _overlap(previous, text)
    before = previous[: len(previous) - k]
    return not before.strip() or before.endswith("\n") or before.rstrip().endswith(_ENDS)


def _overlap(previous: str, text: str) -> int:
    """Length of the longest end of ``previous`` that ``text`` starts with: 8+ characters, or ending a sentence
    (a short accidental match, "到" after "达到", is no overlap)."""
    for k in range(min(len(previous), len(text)), 0, -1):
        tail = previous[-k:]
        if text.startswith(tail) and (k >= 8 or tail.rstrip().endswith(_ENDS)):
            return k
    return 0


def source_note(question_language: str, cited: list[str]) -> list[str]:
    """A note naming the cited passages ([n]) written in the other language than the question, if any."""
    other = [n for n, text in enumerate(cited, start=1) if language(text) != question_language]
    if not other:
        return []
    one, many = SOURCE_LANGUAGE[question_language]
    return [(one if len(other) == 1 else many).format(refs=", ".join(f"[{n}]" for n in other))]
