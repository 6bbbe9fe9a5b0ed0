"""The FastAPI application: ``create_app(settings)`` wires routers, limits, errors and the web page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import docs, mcp_http
from api.errors import install_handlers
from api.jobs import JobRunner
from api.limits import AuthFailures, BodyLimitMiddleware, RateLimiter, SecurityHeadersMiddleware
from api.routers import dify, documents, facets, health, jobs, market, pairs, records, search, sync
from api.search_worker import SearchWorker
from kb.settings import Settings, check_config, get_settings

log = logging.getLogger("kb.api")
STATIC = Path(__file__).parent / "static"

DESCRIPTION = """沁水县煤层气技术知识库 API —— 技术检索、智能问答、供需匹配、文档入库。

Dify's external knowledge API is at `POST /retrieval` (and `/dify/retrieval`), MCP at `/mcp`
(docs/INTEGRATIONS.md). Reads are public unless `KB_PUBLIC_READ=false`; keys from `KB_API_KEYS` (`name:role:key`,
sent as `X-API-Key: …` or `Authorization: Bearer …`) carry a role: `reader` sees public records only, `bureau`
internal records too, `admin` also writes (docs/API.md, "Keys and roles"). Every error is
`{"error": {"code": "...", "message": "..."}}`.
"""


def create_app(settings: Settings | None = None, *, warm: bool = True) -> FastAPI:
    """The service for ``settings`` (default: from the environment); ``warm`` loads the model at start."""
    settings = settings or get_settings()
    check_config(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            app.state.search.warm()
        async with mcp.running():
            yield
        app.state.jobs.close()
        app.state.search.close()

    app = FastAPI(title="cbm-kb 煤层气知识库", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served offline by api/docs.py
    app.state.settings = settings
    app.state.search = SearchWorker(settings)
    app.state.jobs = JobRunner(settings, on_change=app.state.search.refresh)
    app.state.limiter = RateLimiter(settings.rate_limit)
    app.state.auth_failures = AuthFailures(settings.auth_failures)
    app.state.features = ["search", "ask", "match", "dify", "mcp", "sync"]
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_mb * 1024 * 1024)
    app.add_middleware(SecurityHeadersMiddleware)  # added last: outermost, so a 413 carries the headers too
    for module in (health, search, facets, market, pairs, records, documents, jobs, sync, dify):
        app.include_router(module.router)
    app.include_router(records.form_router)
    mcp = mcp_http.mount(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs.install(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (and ``kb serve``): settings from KB_* variables."""
    return create_app(get_settings())
