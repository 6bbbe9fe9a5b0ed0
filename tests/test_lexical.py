"""The streaming BM25 builder: same scores as bm25s's own index, on real corpus text, in any batch size."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest

from kb.index import bm25_build, bm25_files, bm25_search, charkeys
from kb.lang.text import split_sentences, tokenize

ROOT = Path(__file__).resolve().parents[1]


def _rows() -> list[dict[str, str]]:
    """Real text: every need and result of corpus/ plus the plan's paragraphs, with varied filter fields."""
    rows = []
    for f in sorted((ROOT / "corpus").glob("*/*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows.append({"chunk_id": r["id"], "embed_text": f"{r['title']}\n{r['description']}", "doc_id": r["id"],
                         "kind": r["kind"], "source": f.name, "field": r.get("field", ""), "year": "",
                         "section": r["title"]})
    plan = (ROOT / "corpus" / "plan" / "qinshui_plan.txt").read_text(encoding="utf-8")
    for i, para in enumerate(p for p in plan.split("\n") if p.strip()):
        rows.append({"chunk_id": f"plan-{i}", "embed_text": para, "doc_id": "plan", "kind": "plan",
                     "source": "qinshui_plan.txt", "field": "", "year": "2021", "section": f"第{i % 7}章>节{i}"})
    rows.append({"chunk_id": "punct-only", "embed_text": "——。", "doc_id": "x", "kind": "plan", "source": "x",
                 "field": "", "year": "", "section": ""})  # no tokens at all: bm25s's empty-token row
    return rows


def _queries(rows: list[dict[str, str]]) -> list[str]:
    sents = [s for r in rows[::9] for s in split_sentences(r["embed_text"])[:1]]
    return [s[:20] for s in sents][:40] + ["水平井 排采", "low concentration gas", "沁水", "——"]


def _reference(rows: list[dict[str, str]], mode: str) -> bm25s.BM25:
    """bm25s indexing the same tokens itself (its scipy path), as the index was built before."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in (tokenize(r["embed_text"], mode) or [""])] for r in rows]
    vocab.setdefault("", len(vocab))
    model = bm25s.BM25()
    model.index((ids, vocab), show_progress=False)
    return model


def _columns(model: bm25s.BM25) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per token: the rows holding it and their scores (a column of the CSC score matrix)."""
    data, indices, indptr = (np.asarray(model.scores[k]) for k in ("data", "indices", "indptr"))
    return {t: (indices[indptr[i] : indptr[i + 1]], data[indptr[i] : indptr[i + 1]]) for t, i in model.vocab_dict.items()}


@pytest.mark.parametrize("batch", [pytest.param(1, marks=pytest.mark.slow), 97, pytest.param(100_000, marks=pytest.mark.slow)])
def test_scores_equal_bm25s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    rows = _rows()
    assert len(rows) > 400
    monkeypatch.setattr(bm25_build, "BATCH_ROWS", batch)
    bm25_build.build(iter(rows), "char", tmp_path / "bm25")  # a generator: consumed once, never listed
    ours = bm25_search.load(tmp_path / "bm25")
    ref = _reference(rows, "char")
    assert ours is not None and list(ours.ids) == [r["chunk_id"] for r in rows]
    assert ours.model.vocab_dict.keys() == ref.vocab_dict.keys()  # the same tokens (ids may be numbered otherwise)
    mine, theirs = _columns(ours.model), _columns(ref)
    toks = sorted(theirs)  # every column at once: 20k per-token numpy asserts took 7 s
    for i in (0, 1):  # rows holding each token, then their scores
        a, b = (np.concatenate([cols[t][i] for t in toks]) for cols in (mine, theirs))
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-6, atol=0):
            bad = next(t for t in toks if mine[t][i].shape != theirs[t][i].shape
                       or not np.allclose(mine[t][i], theirs[t][i], rtol=1e-6, atol=0))
            raise AssertionError(f"token {bad!r}: {mine[bad][i]} != {theirs[bad][i]}")
    for q in _queries(rows):
        toks = [t for t in tokenize(q, "char") if t in ref.vocab_dict]
        if toks:
            np.testing.assert_allclose(ours.model.get_scores(toks), ref.get_scores(toks), rtol=1e-5, atol=1e-7)
    hits = ours.search("低浓度瓦斯", 5)
    assert hits and all("瓦斯" in next(r["embed_text"] for r in rows if r["chunk_id"] == i) for i, _ in hits[:3])


def test_relative_scores_use_the_saved_token_ceiling(tmp_path: Path) -> None:
    rows = _rows()
    bm25_build.build(rows, "char", tmp_path / "bm25")
    idx = bm25_search.load(tmp_path / "bm25")
    assert idx is not None and idx._token_max is not None  # memory-mapped from the build, not a scan at start
    top = idx.search("煤层气水平井", 3, relative=True)
    assert 0 < top[0][1] <= 1.0
    saved = np.asarray(idx._token_max).copy()
    idx._token_max = None  # an index from before the saved ceiling: computed from the matrix instead
    assert idx.search("煤层气水平井", 3, relative=True) == top
    np.testing.assert_allclose(idx._token_max, saved)


def test_filters_from_memory_mapped_codes(tmp_path: Path) -> None:
    rows = _rows()
    bm25_build.build(rows, "char", tmp_path / "bm25")
    idx = bm25_search.load(tmp_path / "bm25")
    assert idx is not None and isinstance(idx.ids, np.memmap | np.ndarray)
    m = idx.mask({"kind": "need"}, None)
    assert m is not None and m.sum() == sum(r["kind"] == "need" for r in rows) > 0
    m = idx.mask({"year": "2021"}, "第3章")
    assert m is not None and m.sum() == sum(r["year"] == "2021" and r["section"].startswith("第3章") for r in rows) > 0
    none = idx.mask({"kind": "no-such-kind"}, None)
    assert none is not None and not none.any()
    assert idx.mask({}, None) is None
    assert list(idx.column("kind")) == [r["kind"] for r in rows]
    hits = idx.search("瓦斯", 50, mask=idx.mask({"kind": "result"}, None))
    assert hits and all(i in {r["chunk_id"] for r in rows if r["kind"] == "result"} for i, _ in hits)


def test_empty_build_and_legacy_rows_json(tmp_path: Path) -> None:
    bm25_build.build([], "char", tmp_path / "empty")
    empty = bm25_search.load(tmp_path / "empty")
    assert empty is not None and len(empty.ids) == 0 and empty.search("瓦斯", 5) == []
    assert bm25_files.state(tmp_path / "empty") == {"generation": 0, "mode": "char", "rows": 0, "translated": False}

    # an index written by the previous version: one rows.json with every row's fields
    rows = _rows()[:50]
    legacy = tmp_path / "legacy"
    _reference(rows, "char").save(str(legacy / "model"), show_progress=False)
    side = {"mode": "char", "generation": 3, "ids": [r["chunk_id"] for r in rows],
            "sections": [r["section"] for r in rows],
            "fields": {f: [str(r.get(f) or "") for r in rows] for f in bm25_files.FILTER_FIELDS}}
    (legacy / "rows.json").write_text(json.dumps(side, ensure_ascii=False), encoding="utf-8")
    (legacy / "state.json").write_text(json.dumps({"generation": 3, "mode": "char", "rows": 50}), encoding="utf-8")
    old = bm25_search.load(legacy)
    assert old is not None and list(old.ids) == side["ids"]
    m = old.mask({"kind": rows[0]["kind"]}, None)
    assert m is not None and m.sum() == sum(r["kind"] == rows[0]["kind"] for r in rows)
    assert old.search(rows[0]["embed_text"][:12], 1)[0][0] == rows[0]["chunk_id"]
    assert bm25_files.marker(legacy) > 0 and bm25_files.marker(tmp_path / "none") == -1.0


def test_translated_rows_let_chinese_queries_match_english_passages(tmp_path: Path) -> None:
    rows = _rows()
    en = "Boil-off gas from the storage tank is compressed and sent to the fuel system instead of being vented."
    rows.append({"chunk_id": "en-bog", "embed_text": en, "doc_id": "lng_en", "kind": "paper", "source": "x.pdf",
                 "field": "", "year": "", "section": "4.2 Boil-off gas"})
    assert "蒸发" in bm25_build.row_tokens(en, "char", True) and "蒸发" not in bm25_build.row_tokens(en, "char", False)
    bm25_build.build(rows, "char", tmp_path / "plain")
    bm25_build.build(rows, "char", tmp_path / "translated", translated=True)
    plain, translated = bm25_search.load(tmp_path / "plain"), bm25_search.load(tmp_path / "translated")
    assert plain is not None and translated is not None
    assert "en-bog" not in [i for i, _ in plain.search("蒸发气怎么回收", 10)]
    assert "en-bog" in [i for i, _ in translated.search("蒸发气怎么回收", 10)[:3]]
    assert bm25_files.state(tmp_path / "translated")["translated"] is True


def _paragraphs() -> list[str]:
    """Every paragraph of the papers' sources (Chinese and English), the plan, needs and results, and odd text."""
    texts = [r["embed_text"] for r in _rows()]
    for f in sorted((ROOT / "corpus" / "papers" / "src").glob("*.md")):
        texts += [p for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return texts + ["", "——。", "ＬＮＧ储罐３.５ＭＰａ", "lng储罐与u型井", "3.5.5 a.5 x", "𠀀𠀁 CJK Ext-B", "İstanbul K気体",
                    "Boil-off gas (BOG) from LNG tanks", "e.g. 煤层气 CBM wells"]


@pytest.mark.parametrize("translated", [False, True])
def test_batch_tokenizer_equals_the_scalar_one(translated: bool) -> None:
    texts = _paragraphs()
    assert len(texts) > 500
    keys = charkeys.Keys()
    rows, flat, lens = charkeys.batch_keys(texts, keys, translated)
    assert len(lens) == len(texts) and lens.sum() == len(flat) == len(rows)
    order = np.argsort(rows, kind="stable")
    flat, at = flat[order], 0
    for text, n in zip(texts, lens.tolist(), strict=True):
        got = sorted(keys.token(k) for k in flat[at : at + n].tolist())
        at += n
        assert got == sorted(bm25_build.row_tokens(text, "char", translated) or [""]), text


def test_top_k_equals_a_full_partition() -> None:
    rng = np.random.default_rng(0)
    for n, k in [(300_000, 100), (300_000, 5), (1000, 10), (200_000, 1000)]:
        scores = rng.gamma(1.0, size=n).astype(np.float32)
        scores[rng.random(n) < 0.3] = 0.0
        scores[:50] = scores[60]  # ties
        full = np.argsort(-scores, kind="stable")[:k]
        got = bm25_search._top_k(scores, k)
        np.testing.assert_array_equal(np.sort(scores[got])[::-1], scores[full])
    zeros = np.zeros(500_000, dtype=np.float32)
    zeros[[7, 9]] = 1.0
    assert set(bm25_search._top_k(zeros, 100)[:2].tolist()) == {7, 9}


def test_languages_of_chunks(tmp_path: Path) -> None:
    rows = _rows()[:40]
    rows.append({"chunk_id": "aaa-en", "embed_text": "x", "text": "Boil-off gas from LNG tanks", "doc_id": "e",
                 "kind": "paper", "source": "x", "field": "", "year": "", "section": ""})
    bm25_build.build(rows, "char", tmp_path / "bm25")  # ids out of order: lookups go through the saved argsort
    idx = bm25_search.load(tmp_path / "bm25")
    assert idx is not None
    langs = idx.languages(["aaa-en", rows[0]["chunk_id"], "not-there"])
    assert langs == {"aaa-en": True, rows[0]["chunk_id"]: False}
