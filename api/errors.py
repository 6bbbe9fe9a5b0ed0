"""The API's errors and the one JSON shape every failure takes: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb.errors import KBError

log = logging.getLogger("kb.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited"}


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


class RateLimitedError(APIError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class SearchTimeoutError(APIError):
    code = "search_timeout"
    status = 504


class ConfigError(APIError):
    """The service refuses to start with this configuration."""

    code = "config"
    status = 500


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


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
    return error_response(exc.status, exc.code, exc.message, getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", _validation_message(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error; see the server log")


def install_handlers(app: FastAPI) -> None:
    """Every error leaves the API in the same shape."""
    app.add_exception_handler(KBError, _kb_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
