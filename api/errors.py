"""The API's errors and the one JSON shape every failure takes: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from kb.errors import KBError
from kb.settings import Settings

log = logging.getLogger("kb.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited"}


_WHEN = {400: "bad query, filter, cursor or request body", 401: "missing or invalid API key",
         403: "writes are disabled on this server, or the key's role may not do this",
         404: "no such document, job, need or result",
         406: "the Accept header allows none of the offered types",
         409: "the index is busy with another write, or was built with another model",
         413: "request body larger than KB_MAX_UPLOAD_MB, or more files than KB_MAX_UPLOAD_FILES",
         415: "no uploaded file has a supported type",
         422: "the request does not match this schema",
         429: "rate limit (KB_RATE_LIMIT) reached, or too many wrong keys (KB_AUTH_FAILURES); see Retry-After",
         504: "the search took longer than its time budget"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = Field(None, description="422 invalid_record only: what is wrong with each field")


class ErrorBody(BaseModel):
    """The one shape of every error response."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, so clients (and Schemathesis) know each one's shape."""
    return {status: {"model": ErrorBody, "description": _WHEN[status]} for status in statuses}


# every operation that takes a key or a body can answer these
COMMON_ERRORS = error_responses(401, 413, 422, 429)


class APIError(KBError):
    """A KBError that may carry response headers (WWW-Authenticate, Retry-After)."""

    headers: dict[str, str] | None = None


class UnauthorizedError(APIError):
    code = "unauthorized"
    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


class WritesDisabledError(APIError):
    code = "writes_disabled"
    status = 403


class ForbiddenError(APIError):
    """A valid key whose role may not do this (a reader's or the bureau's key writing)."""

    code = "forbidden"
    status = 403


class BusyError(APIError):
    """The index is being written by another job; the client may retry."""

    code = "busy"
    status = 409


class NotAcceptableError(APIError):
    code = "not_acceptable"
    status = 406


class PayloadTooLargeError(APIError):
    code = "payload_too_large"
    status = 413


class TooManyFilesError(APIError):
    code = "too_many_files"
    status = 413


class RateLimitedError(APIError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class SearchTimeoutError(APIError):
    code = "search_timeout"
    status = 504


# an absolute path not preceded by a word character, ':' or '/' (so URLs, dates and "a/b" are left alone)
_ABS_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"<>()\[\]{},;:]+/)*([^\s/'\"<>()\[\]{},;:]+)")


def without_paths(text: str, settings: Settings | None = None) -> str:
    """A message fit for a client: KB_HOME and the model cache named by their settings, any other absolute
    server path cut to its last part (lock holders' command lines, parser errors, file names)."""
    if settings is not None:
        for root, name in ((settings.home, "KB_HOME"), (settings.model_cache, "KB_MODEL_CACHE")):
            for form in sorted({str(root.resolve()), str(root.absolute())}, key=len, reverse=True):
                text = text.replace(form, name)
    return _ABS_PATH.sub(lambda m: m.group(1), text)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   fields: dict[str, str] | None = None) -> JSONResponse:
    detail: dict[str, object] = {"code": code, "message": message}
    if fields:
        detail["fields"] = fields
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _kb_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KBError)
    if exc.status >= 500:
        log.error("%s: %s", exc.code, exc.message)
    message = without_paths(exc.message, request.app.state.settings)
    return error_response(exc.status, exc.code, message, getattr(exc, "headers", None), getattr(exc, "fields", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", _validation_message(exc))


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path, asked of each route as the router asks it.

    Starlette's 405 lists only the first route that matched the path (``Allow: POST`` for /documents,
    which also serves GET), and FastAPI's included routers carry no ``methods`` of their own, which
    left ``Allow`` empty. Our static files serve GET and HEAD.
    """
    allowed: set[str] = set()
    root = request.scope.get("app_root_path", "")  # inside a mount, root_path has grown by the mount's path
    for route in request.app.router.routes:
        for method in _METHODS:
            match, _ = route.matches({**request.scope, "method": method, "root_path": root})
            if match == Match.FULL:
                if isinstance(route, Mount):  # a mounted app: only our static files say what they serve
                    allowed |= {"GET", "HEAD"} if isinstance(route.app, StaticFiles) else set()
                else:
                    allowed.add(method)
    return ", ".join(m for m in _METHODS if m in allowed)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error; see the server log")


def install_handlers(app: FastAPI) -> None:
    """Every error leaves the API in the same shape."""
    app.add_exception_handler(KBError, _kb_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
