"""Interactive API docs that work offline: /docs (Swagger UI) and /redoc from assets shipped in a wheel.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (a blank page offline) and start Swagger UI with an
inline script (no strict Content-Security-Policy fits); these pages load the files of the ``fastapi-offline``
wheel (Swagger UI: Apache-2.0, ReDoc: MIT, the package: MIT) and our own start script, nothing inline.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js
PAGES = Path(__file__).parent / "static" / "docs"
ASSETS_URL = "/docs-assets"


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc (the app must be created with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> FileResponse:
        return FileResponse(PAGES / "swagger.html")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> FileResponse:
        return FileResponse(PAGES / "redoc.html")
