"""docs/INTEGRATIONS.md cannot drift: every code block in it runs against a real ``kb serve``.

bash and python blocks must exit 0 (a curl -f fails on any HTTP error) and print JSON or text; a JSON block
after a command is its answer (the values shown must be in the real one); MCP client configurations are
loaded the way a client would and connected to with the SDK's client. Blocks marked ``not-run`` start
long-lived processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.utils import MINI_DOCS, ROOT, free_port, integration_home, kb_process, write_docs

pytestmark = pytest.mark.slow  # a server, and a process per example

DOC = ROOT / "docs" / "INTEGRATIONS.md"
DOC_URL, DOC_KEY = "http://127.0.0.1:8000", "change-me-long-random"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, bool, str]]:
    """(language, runs, code) of every fenced block, in order."""
    return [(lang, "not-run" not in flags, code) for lang, flags, code in BLOCK.findall(DOC.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("docs")
    home = integration_home(root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(home) | {"KB_API_KEYS": DOC_KEY, "KB_PUBLIC_READ": "false", "KB_SEARCH_TIMEOUT_S": "120"}  # a loaded CI box
    with kb_process(["serve", "--port", str(port)], env, ready=f"{url}/health", log=root / "serve.log"):
        yield url, home, root


def _env(home: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    keep = {k: os.environ[k] for k in ("HOME", "KB_EMBED_MODEL", "KB_MODEL_CACHE") if k in os.environ}
    return {**keep, "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), "KB_HOME": str(home)}


def _subset(shown: Any, real: Any, where: str = "") -> None:
    """Every value the documentation shows is in the real answer (lists: the shown items come first)."""
    if isinstance(shown, dict):
        assert isinstance(real, dict), where
        for k, v in shown.items():
            assert k in real, f"{where}.{k} missing"
            if k == "score":  # a ranking score: its range, not its value, is the contract
                assert 0.0 <= real[k] <= 1.0
            else:
                _subset(v, real[k], f"{where}.{k}")
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(real) >= len(shown), where
        for i, v in enumerate(shown):
            _subset(v, real[i], f"{where}[{i}]")
    else:
        assert shown == real, f"{where}: documented {shown!r}, got {real!r}"


async def _mcp_tools(config: dict[str, Any], home: Path, log: Path) -> list[str]:
    if "url" in config:
        async with httpx2.AsyncClient(headers=config["headers"], timeout=60) as http:
            async with Client(streamable_http_client(config["url"], http_client=http)) as client:
                return [t.name for t in (await client.list_tools()).tools]
    command = str(Path(sys.executable).with_name(config["command"]))  # where the install put `kb`
    env = {**_env(home), **config["env"], "KB_HOME": str(home)}  # the documented variables, this test's index
    params = StdioServerParameters(command=command, args=config["args"], env=env, cwd=ROOT)
    with open(log, "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            return [t.name for t in (await client.list_tools()).tools]


def test_every_example_runs(server: Any) -> None:
    url, home, root = server
    work = root / "work"
    write_docs(work / "shared", {"horizontal.md": MINI_DOCS["horizontal.md"]})
    ran, last_out = 0, ""
    for n, (lang, runs, code) in enumerate(blocks()):
        if not runs:
            continue
        code = code.replace(DOC_URL, url)
        if lang in ("bash", "python"):
            args = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
            done = subprocess.run(args, cwd=work, env=_env(home), capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, f"block {n} ({lang}) failed:\n{code}\n{done.stdout}\n{done.stderr[-3000:]}"
            assert done.stdout.strip(), f"block {n} printed nothing"
            last_out = done.stdout
            if lang == "bash":
                json.loads(last_out)  # every shell example prints a JSON answer
        elif lang == "json" and "mcpServers" in code:
            (config,) = json.loads(code)["mcpServers"].values()
            tools = asyncio.run(_mcp_tools(config, home, root / f"mcp-{n}.log"))
            assert sorted(tools) == ["ask", "get_document", "match", "search"]
        elif lang == "json":
            _subset(json.loads(code), json.loads(last_out), f"block {n}")
        else:
            raise AssertionError(f"block {n}: no runner for {lang!r}")
        ran += 1
    assert ran >= 9


def test_the_doc_names_every_knowledge_id_and_operator() -> None:
    from kb.integrations.dify import KNOWLEDGE, Operator

    text = DOC.read_text(encoding="utf-8")
    assert all(f"| `{k}` |" in text for k in KNOWLEDGE)
    assert all(f"`{op}`" in text for op in Operator.__args__)  # type: ignore[attr-defined]
