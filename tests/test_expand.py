"""Bilingual glossary expansion of queries."""

from kb.search.expand import english_terms_to_chinese, expand, is_latin


def test_english_phrases_map_to_chinese_terms_longest_first() -> None:
    zh = english_terms_to_chinese("How are coal fines controlled during well dewatering?")
    assert "煤粉" in zh and "排采" in zh


def test_plural_forms_are_found() -> None:
    assert "管道" in english_terms_to_chinese("pipelines") or "管线" in english_terms_to_chinese("pipelines")


def test_only_english_queries_are_expanded() -> None:
    assert is_latin("coal fines in CBM wells") and not is_latin("煤粉怎么防治 CBM")
    assert expand("煤层气排采 dewatering") == "煤层气排采 dewatering"
    assert expand("coalbed methane dewatering").startswith("coalbed methane dewatering 煤层气")


def test_queries_without_glossary_terms_are_unchanged() -> None:
    assert expand("xyzzy plugh") == "xyzzy plugh"
