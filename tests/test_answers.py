"""Question understanding and answer text, without a model: wordings, spellings, figures, sentence starts,
reference marks, the primary source, messages in the question's language."""

from __future__ import annotations

import pytest

from kb.lang.spelling import respelled
from kb.lang.text import latin_sentences, sentences
from kb.models import SearchHit
from kb.search.answer_text import NOT_FOUND, protect_references, source_note, starts_sentence
from kb.search.ask import PRIMARY_MARGIN, Scored, candidates, numbered, pick, prefer_primary, preference
from kb.search.question import figures, has_number, language, understand


def _hit(doc_id: str, kind: str, text: str, hid: str | None = None) -> SearchHit:
    return SearchHit(id=hid or f"{doc_id}-c0", doc_id=doc_id, score=0.5, text=text, title=doc_id, kind=kind,
                     source=f"{doc_id}.txt", section="s", page=None)


def test_everyday_wording_gets_the_plans_official_wording() -> None:
    q = understand("到2025年沁水县研发经费投入强度目标是多少？")
    assert q.wordings[0] == "到2025年沁水县研发经费投入强度目标是多少？"
    assert "到2025年沁水县研究与试验发展经费占地区生产总值的比重目标是多少?" in q.wordings
    assert q.language == "zh" and q.wants_number and q.years == {"2025"}
    # and back: the official wording also searches with the everyday one
    assert "沁水县研发经费投入强度是多少" in understand("沁水县研究与试验发展经费占地区生产总值的比重是多少").wordings


def test_an_english_question_gets_english_wording_and_the_chinese_official_term() -> None:
    q = understand("What is the R&D intensity target?")
    assert q.language == "en" and q.wordings == ("What is the R&D intensity target?",
                                                 "what is the research and development intensity target?",
                                                 "what is the 研究与试验发展经费占地区生产总值的比重 target?")


@pytest.mark.parametrize(("text", "other"), [
    ("coalbed methane utilization rate", "coalbed methane utilisation rate"),
    ("Utilisation of the vapour", "Utilization of the vapor"),
    ("modelling the centre of the analysed seam", "modeling the center of the analyzed seam"),
    ("the size of the enterprise", None),  # one spelling only
    ("排采制度", None),
])
def test_british_and_american_spellings(text: str, other: str | None) -> None:
    assert respelled(text) == other


def test_the_other_spelling_is_one_of_the_wordings() -> None:
    q = understand("What is the target CBM utilization rate by 2025?")
    assert q.wordings[:2] == ("What is the target CBM utilization rate by 2025?",
                              "What is the target CBM utilisation rate by 2025?")


@pytest.mark.parametrize(("question", "wants"), [
    ("煤层气利用率要达到多少？", True), ("研发经费投入强度目标", True), ("How much gas is produced per day?", True),
    ("排采分为哪几个阶段", False), ("如何控制井底流压", False),
])
def test_questions_after_a_figure(question: str, wants: bool) -> None:
    assert understand(question).wants_number is wants


def test_figures_and_language() -> None:
    assert has_number("比重达到 1.88%") and not has_number("到2025年基本建成")
    assert figures("达到 1.88%，企业达到 13 家") == {"1.88%", "13"}
    assert [language(t) for t in ("asdkjqwe 火星上的长颈鹿", "What is CBM?", "CBM 利用率是多少")] == ["zh", "en", "zh"]


def test_english_sentences_split_at_full_stops_not_abbreviations() -> None:
    text = ("Chengdu Shenleng Liquefaction Equipment Co., Ltd. The overarching target is at least 95% by 2025 [4]. "
            "Smith et al. (2019) and Fig. 3 show it, e.g. The plant.")
    assert latin_sentences(text) == ["Chengdu Shenleng Liquefaction Equipment Co., Ltd.",
                                     "The overarching target is at least 95% by 2025 [4].",
                                     "Smith et al. (2019) and Fig. 3 show it, e.g. The plant."]
    assert sentences("排采分三个阶段。第一阶段排水降压；") == ["排采分三个阶段。", "第一阶段排水降压；"]


@pytest.mark.parametrize(("previous", "text", "starts"), [
    (None, "whatever the first chunk says", True),
    ("第一句。第二句的前半", "后半句。第三句。", False),  # continues a sentence the previous chunk cut
    ("第一句。第二句。", "第三句。", True),
    ("Alpha one. The LNG is supplied by", "Chengdu Shenleng Co., Ltd. The target is 95%.", False),
    ("Alpha one. Beta two. Gamma", "Beta two. Gamma three.", True),  # overlap: repeats whole sentences
    ("标题行\n", "正文开始。", True),
])
def test_a_chunk_starts_a_sentence_or_not(previous: str | None, text: str, starts: bool) -> None:
    assert starts_sentence(previous, text) is starts


def test_the_cut_sentence_at_a_chunks_start_is_no_candidate() -> None:
    hit = _hit("paper", "paper", "Chengdu Shenleng Co., Ltd. The overarching target is a CBM utilisation rate of 95%.")
    assert [s for s, _ in candidates([hit], frozenset({hit.id}))] == ["The overarching target is a CBM utilisation rate of 95%."]
    assert len(candidates([hit])) == 2


def test_a_sources_reference_marks_never_become_our_citations() -> None:
    assert protect_references("target of 95% by 2025 [4]; see [2, 3] and [5-7].") == \
        "target of 95% by 2025 ［4］; see ［2, 3］ and ［5-7］."
    s = Scored(0.9, "The target is 95% by 2025 [4].", _hit("paper", "paper", "The target is 95% by 2025 [4]."))
    answer, cited = numbered([s])
    assert answer == "The target is 95% by 2025 ［4］.[1]" and cited[0].text == "The target is 95% by 2025 [4]."
    assert cited[0].chunk_id == "paper-c0"


def test_the_plan_is_cited_rather_than_a_paper_quoting_it() -> None:
    quote = Scored(0.86, "规划提出到2025年煤层气利用率达到95%以上。", _hit("review", "paper", "x"), 0.86)
    plan = Scored(0.80, "到2025年，煤层气利用率达到95%以上。", _hit("plan", "plan", "y"), 0.80)
    other = Scored(0.84, "利用率达到90%。", _hit("plan2", "plan", "z"), 0.84)  # another figure: not the same fact
    assert prefer_primary(pick([quote, plan, other]), [quote, plan, other])[0] is plan
    far = Scored(0.86 - PRIMARY_MARGIN - 0.01, plan.text, plan.hit)
    assert prefer_primary([quote], [quote, far]) == [quote]


def test_a_figure_and_the_year_asked_for_go_first() -> None:
    q = understand("到2025年煤层气利用率要达到多少？")
    with_figure = _hit("plan", "plan", "到2025年，煤层气利用率达到95%以上。")
    assert preference(q, "煤层气利用率达到95%以上。", with_figure) > preference(q, "提高煤层气利用率。", _hit("p", "paper", "x"))
    assert preference(understand("排采怎么控制"), "煤层气利用率达到95%以上。", with_figure) == 0.0


def test_messages_in_the_questions_language() -> None:
    assert NOT_FOUND["en"].startswith("The knowledge base has no sentence")
    assert source_note("en", ["全县研究与试验发展经费占地区生产总值的比重达到1.88%。", "The target is 95%."]) == \
        ["Source [1] is in Chinese and is quoted as written."]
    assert source_note("en", ["比重达到1.88%。", "利用率达到95%。"]) == ["Sources [1], [2] are in Chinese and are quoted as written."]
    assert source_note("zh", ["煤层气利用率达到95%。", "The target is 95% by 2025."]) == ["引用[2]为英文原文，按原文引用。"]
    assert source_note("zh", ["到2025年达到95%。"]) == [] and source_note("en", []) == []
