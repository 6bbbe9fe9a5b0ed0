"""The MCP server through the SDK's own client: over stdio (``kb mcp``) and over HTTP (``kb serve``'s /mcp).

Both servers are real processes on this machine (127.0.0.1), started and stopped here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.utils import INTEGRATION_RESULTS, KEY, MINI_DOCS, ROOT, free_port, integration_home, kb_process, make_client

EVERY_DOC = {r["id"] for r in INTEGRATION_RESULTS} | {"N901"} | {Path(n).stem for n in MINI_DOCS}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return integration_home(tmp_path_factory.mktemp("mcp"))


def _env(home: Path, **extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "KB_EMBED_MODEL", "KB_MODEL_CACHE")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "PYTHONPATH": str(ROOT), "KB_HOME": str(home), **extra}


@pytest.fixture(scope="module")
def http_server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kb serve`` with keys and private reads, on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with kb_process(["serve", "--port", str(port)], _env(home, KB_API_KEYS=KEY, KB_PUBLIC_READ="false", KB_SEARCH_TIMEOUT_S="120"),
                    ready=f"{url}/health", log=log):
        yield url


@asynccontextmanager
async def _stdio(home: Path, log: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "kb.cli", "mcp"], env=_env(home), cwd=ROOT)
    with open(log, "w") as errlog:  # the server's stderr (pytest's capture has no file descriptor)
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:  # as desktop clients do
            yield client


@asynccontextmanager
async def _http(url: str, key: str = KEY) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            yield client


async def _exercise(client: Client) -> dict[str, Any]:
    """Every tool and the resources, as an agent would use them; returns what came back."""
    out: dict[str, Any] = {"tools": {t.name: t for t in (await client.list_tools()).tools}}
    for name, args in {"search": {"query": "撬装式煤层气液化装置", "top_k": 3},
                       "search_kind": {"query": "煤层气", "top_k": 20, "kind": "need"},
                       "ask": {"question": "排采分为哪几个阶段"},
                       "match": {"need_id": "N901", "top_k": 3},
                       "match_text": {"text": "低浓度瓦斯怎么发电", "top_k": 2, "min_trl": 8},
                       "get_document": {"doc_id": "R901"},
                       "missing": {"doc_id": "R000"}, "empty": {"query": ""}}.items():
        tool = {"search_kind": "search", "match_text": "match", "missing": "get_document", "empty": "search"}.get(name, name)
        out[name] = await client.call_tool(tool, args)
    listed = (await client.list_resources()).resources
    out["resources"] = {str(r.uri): r for r in listed}
    out["read"] = (await client.read_resource("kb://documents/R901")).contents[0]
    return out


def _check(got: dict[str, Any]) -> None:
    tools = got["tools"]
    assert set(tools) == {"search", "ask", "match", "get_document"}
    for t in tools.values():  # Chinese, then English
        assert " / " in t.description and any("\u4e00" <= ch <= "\u9fff" for ch in t.description)
    assert tools["search"].input_schema["required"] == ["query"]

    hits = got["search"].structured_content["hits"]
    assert not got["search"].is_error and hits[0]["doc_id"] == "R901" and len(hits) == 3
    assert json.loads(got["search"].content[0].text)["hits"][0]["doc_id"] == "R901"  # the text part, for older clients
    assert {h["doc_id"] for h in got["search_kind"].structured_content["hits"]} == {"N901"}

    ask = got["ask"].structured_content
    assert set(ask) >= {"question", "answer", "found", "citations"} and ask["question"] == "排采分为哪几个阶段"
    assert ask["citations"] and {c["doc_id"] for c in ask["citations"]} <= EVERY_DOC

    match = got["match"].structured_content
    assert (match["query"]["mode"], match["query"]["id"], match["query"]["target"]) == ("need", "N901", "result")
    assert match["matches"][0]["doc_id"] == "R904" and len(match["matches"]) == 3
    assert {m["doc_id"] for m in got["match_text"].structured_content["matches"]} == {"R903", "R905"}

    doc = got["get_document"].structured_content
    assert (doc["doc_id"], doc["kind"], doc["title"], doc["source"]) == ("R901", "result", "撬装式煤层气液化装置", "results.jsonl")
    assert doc["meta"]["field"] == "储运液化" and "撬装混合冷剂循环液化" in doc["passages"][0]["text"]
    assert got["missing"].is_error and "no document with id 'R000'" in got["missing"].content[0].text
    assert got["empty"].is_error

    resources = got["resources"]
    assert {u.removeprefix("kb://documents/") for u in resources} == EVERY_DOC
    assert resources["kb://documents/R901"].title == "撬装式煤层气液化装置"
    assert got["read"].mime_type == "text/markdown" and got["read"].text.startswith("# 撬装式煤层气液化装置\n")
    assert "- field: 储运液化" in got["read"].text


@pytest.mark.slow
def test_every_tool_over_stdio(home: Path, tmp_path: Path) -> None:
    async def run() -> dict[str, Any]:
        async with _stdio(home, tmp_path / "mcp.log") as client:
            return await _exercise(client)

    _check(asyncio.run(run()))


@pytest.mark.slow
def test_every_tool_over_http(http_server: str) -> None:
    async def run() -> dict[str, Any]:
        async with _http(http_server) as client:
            return await _exercise(client)

    _check(asyncio.run(run()))


@pytest.mark.slow
def test_http_takes_the_api_keys(http_server: str) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
        resp = httpx.post(f"{http_server}/mcp", json=hello, headers={**accept, **headers})
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
    resp = httpx.post(f"{http_server}/mcp", json=hello, headers={**accept, "X-API-Key": KEY})
    assert resp.status_code == 200 and resp.json()["result"]["serverInfo"]["name"] == "cbm-kb"

    async def refused() -> None:
        async with _http(http_server, key="wrong") as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 -- the SDK reports the 401 in its own way
        asyncio.run(refused())


def test_mcp_over_http_follows_the_read_policy(home: Path) -> None:
    """Public reads: no key needed, a wrong key refused; private reads: a key needed (as for POST /search)."""
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    with make_client(home) as c:
        assert c.post("/mcp", json=hello, headers=accept).json()["result"]["serverInfo"]["name"] == "cbm-kb"
        assert c.post("/mcp", json=hello, headers={**accept, "Authorization": "Bearer wrong"}).status_code == 401
    with make_client(home, public_read=False) as c:
        assert c.post("/mcp", json=hello, headers=accept).status_code == 401
        assert c.post("/mcp", json=hello, headers={**accept, "X-API-Key": KEY}).status_code == 200
    with make_client(home, rate_limit=1) as c:
        assert c.post("/mcp", json=hello, headers=accept).status_code == 200
        assert c.post("/mcp", json=hello, headers=accept).status_code == 429
