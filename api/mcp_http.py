"""The MCP server over streamable HTTP at /mcp, behind the API's keys and rate limit.

Stateless, JSON responses: every request stands alone, so it works with ``--workers`` (no session
lives in one process) and answers as fast as a REST call. The tools run on the app's search worker, seeing what
the request's key may see: the endpoint puts it in a context variable, which the SDK's tasks for this request
inherit (a task copies the context of the code that starts it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path

import anyio
import anyio.abc
from fastapi import FastAPI, Request
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.auth import read_access
from api.errors import APIError, error_response
from api.uploads import original_name
from kb.integrations.mcp_server import KBServer, build_server
from kb.models import PUBLIC_ONLY

PATH = "/mcp"
# what the current request's caller may see; a task outside any request (none should run tools) sees public only
_VISIBLE: ContextVar[frozenset[str]] = ContextVar("kb_mcp_visible", default=PUBLIC_ONLY)


def _source_name(source: str) -> str:
    return original_name(source) or Path(source).name


class MCPEndpoint:
    """The ASGI endpoint: the key check (as for every read), then the SDK's transport of this lifespan.

    The server and its session manager start on the first /mcp request, inside the lifespan's task group:
    building the four tools' schemas took 80 ms of every app start, most of a test app's set-up."""

    def __init__(self, build: Callable[[], KBServer]) -> None:
        self._build = build
        self._transport: StreamableHTTPASGIApp | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._starting: anyio.Lock | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The task group the session manager runs in once started (the SDK's can run only once per server)."""
        async with anyio.create_task_group() as tasks:
            self._tasks, self._starting = tasks, anyio.Lock()
            try:
                yield
            finally:
                self._tasks = self._transport = None
                tasks.cancel_scope.cancel()

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        _VISIBLE.set(PUBLIC_ONLY)  # this task copied the first caller's context: it must not keep their access
        server = self._build()
        # no DNS-rebinding check: the endpoint takes the same keys as the REST API, which has none either,
        # and the SDK's default would refuse every Host but 127.0.0.1 / localhost
        server.streamable_http_app(stateless_http=True, json_response=True,
                                        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        manager = server.session_manager
        async with manager.run():
            self._transport = StreamableHTTPASGIApp(manager)
            task_status.started()
            await anyio.sleep_forever()

    async def _started(self) -> StreamableHTTPASGIApp | None:
        if self._transport is None and self._tasks is not None and self._starting is not None:
            async with self._starting:
                if self._transport is None and self._tasks is not None:
                    await self._tasks.start(self._serve)
        return self._transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            caller = read_access(Request(scope))
        except APIError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(scope, receive, send)
            return
        transport = await self._started()
        if transport is None:
            await error_response(503, "unavailable", "the MCP endpoint is not running")(scope, receive, send)
            return
        token = _VISIBLE.set(caller.visible)
        try:
            await transport(scope, receive, send)
        finally:
            _VISIBLE.reset(token)


def mount(app: FastAPI) -> MCPEndpoint:
    """Add POST/GET/DELETE /mcp to ``app``; run ``endpoint.running()`` in the app's lifespan."""
    endpoint = MCPEndpoint(lambda: build_server(app.state.settings, app.state.search, visible=_VISIBLE.get,
                                                source_name=_source_name))
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False))
    return endpoint
