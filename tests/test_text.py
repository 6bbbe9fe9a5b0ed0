from kb.ingest.chunk import pack
from kb.lang.text import char_tokens, fold, jieba_tokens, normalize, split_sentences, tokenize


def test_normalize_removes_spaces_between_cjk_and_numbers() -> None:
    assert normalize("嘉沁煤层气 60 万 Nm³/日煤层气液化项目") == "嘉沁煤层气60万Nm³/日煤层气液化项目"
    assert normalize("规划新建 5G 站点 300 个") == "规划新建5G站点300个"


def test_normalize_keeps_spaces_between_latin_words_and_drops_nul() -> None:
    assert normalize("mixed  refrigerant\x00 cycle") == "mixed refrigerant cycle"


def test_sentences_split_on_chinese_ends_and_keep_closing_quotes() -> None:
    assert split_sentences("开展研究。提升能力！“好吗？”他说；然后\n新行") == [
        "开展研究。", "提升能力！", "“好吗？”", "他说；", "然后", "新行"]


def test_char_tokens_are_unigrams_bigrams_and_latin_words() -> None:
    assert char_tokens("煤层气 5G") == ["煤", "层", "气", "煤层", "层气", "5g"]


def test_jieba_uses_cbm_dictionary() -> None:
    toks = jieba_tokens("多分支水平井排采")
    assert "多分支水平井" in toks and "排采" in toks


def test_tokenize_both_adds_long_jieba_words() -> None:
    assert "多分支水平井" in tokenize("多分支水平井", "both")


def test_pack_never_cuts_a_sentence_and_respects_size() -> None:
    text = "第一句很短。" + "第二句稍微长一点点。" * 3 + "最后一句。"
    chunks = pack(text, size=25, overlap=8)
    assert all(len(c) <= 25 for c in chunks)
    assert all(c.endswith("。") for c in chunks)
    assert "".join(chunks).count("最后一句。") == 1


def test_pack_overlaps_by_whole_sentences() -> None:
    chunks = pack("甲甲甲。乙乙乙。丙丙丙。丁丁丁。", size=8, overlap=4)
    assert chunks == ["甲甲甲。乙乙乙。", "乙乙乙。丙丙丙。", "丙丙丙。丁丁丁。"]


def test_pack_cuts_an_overlong_sentence() -> None:
    assert pack("长" * 25 + "。", size=10, overlap=0) == ["长" * 10, "长" * 10, "长" * 5 + "。"]


def test_fold_equals_nfkc_then_lower_on_real_and_odd_text() -> None:
    import unicodedata
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    texts = [p for f in sorted((root / "corpus").rglob("*.md")) + [root / "corpus" / "plan" / "qinshui_plan.txt"]
             for p in f.read_text(encoding="utf-8").split("\n")]
    texts += ["３．５ＭＰａ，（注）：ＬＮＧ！？", "①㎡ｶﾀｶﾅ", "é", "e\u0301，x", "Ａ\u0301（", "\u3000全角空格", "ﬁ", "Σ。"]
    assert len(texts) > 500
    for t in texts:
        assert fold(t) == unicodedata.normalize("NFKC", t).lower(), t


def test_a_document_keeps_one_chunk_per_distinct_text() -> None:
    """A cell of 200,000 "x" made ~670 identical vectors that trapped Chroma's HNSW search (a dense query then
    missed the one passage it matched); repeated chunks of one document are written once, in order."""
    from kb.ingest.chunk import chunk_document
    from kb.models import Document, Section

    cell = "x" * 200_000
    doc = Document("1", "project", "名单", "rows.csv", [Section(cell, ("name",)), Section("井底流压缓慢下降。", ("note",)),
                                                         Section(cell, ("name",))])
    chunks = chunk_document(doc, 300, 60)
    assert len({c.embed_text for c in chunks}) == len(chunks) < 5
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    assert any("井底流压" in c.text for c in chunks)
    same_words_other_heading = Document("2", "paper", "t", "t.md", [Section("同一句话。", ("一",)), Section("同一句话。", ("二",))])
    assert len(chunk_document(same_words_other_heading, 300, 60)) == 2  # its heading is part of what is embedded
