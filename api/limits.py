"""Request limits: body size (before the body is buffered), a per-key token bucket, wrong-key back-off, and the
security headers of every response."""

from __future__ import annotations

import math
import threading
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLargeError, RateLimitedError, error_response


class BodyLimitMiddleware:
    """413 from Content-Length up front, or as soon as the streamed body passes the limit.

    Written by hand (rather than FastAPI's ``max_body_size``) because our pin allows FastAPI
    versions without it, and so the 413 has our JSON shape.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise PayloadTooLargeError(self._message())
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app made of the broken body, the answer is 413
                if not started:
                    started = True
                    await self._reject(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            if not started:
                await self._reject(scope, receive, send)

    def _message(self) -> str:
        return f"request body larger than {self.max_bytes // (1024 * 1024)} MB (KB_MAX_UPLOAD_MB)"

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, PayloadTooLargeError.code, self._message(), {"Connection": "close"})
        await response(scope, receive, send)


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, last refill time)
        self._lock = threading.Lock()

    def check(self, caller: str) -> None:
        """Take one token for ``caller`` or raise RateLimitedError."""
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise RateLimitedError(f"more than {self.per_minute} requests per minute; retry in {wait} s", wait)
            self._buckets[caller] = (tokens - 1.0, now)
            if len(self._buckets) > 10000:  # forget idle callers (their buckets are full again anyway)
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}


class AuthFailures:
    """Wrong API keys per client address: past ``per_minute`` in a minute, every request from that address
    that sends a key is refused (429, its key not even checked, so a guess cannot tell) for a back-off that
    doubles with each further wrong key: 1 s, 2 s, 4 s ... up to 15 min; 15 quiet minutes forgive it."""

    MAX_BACKOFF_S = 900.0
    FORGIVE_S = 900.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._fails: dict[str, list[float]] = {}  # address -> times of its wrong keys in the last minute
        self._block: dict[str, tuple[float, float]] = {}  # address -> (blocked until, last back-off in s)
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """RateLimitedError while ``address`` is backing off."""
        if self.per_minute <= 0:
            return
        with self._lock:
            until, _ = self._block.get(address, (0.0, 0.0))
        wait = until - time.monotonic()
        if wait > 0:
            raise RateLimitedError(f"too many wrong API keys from this address; retry in {math.ceil(wait)} s",
                                   math.ceil(wait))

    def failed(self, address: str) -> None:
        """Count a wrong key; past the limit the address backs off, twice as long as the last time."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._fails.get(address, []) if now - t < 60] + [now]
            self._fails[address] = recent
            until, last = self._block.get(address, (0.0, 0.0))
            if now - until > self.FORGIVE_S:
                last = 0.0
            if len(recent) >= self.per_minute or last > 0:  # once backing off, every wrong key doubles it
                backoff = min(max(2 * last, 1.0), self.MAX_BACKOFF_S)
                self._block[address] = (now + backoff, backoff)
            if len(self._fails) > 10000:  # forget addresses that have been quiet for a while
                self._fails = {a: ts for a, ts in self._fails.items() if now - ts[-1] < 60}
                self._block = {a: b for a, b in self._block.items() if now - b[0] < self.FORGIVE_S}


# The page (api/static/) loads only its own script and style sheet, and puts server-escaped highlight HTML
# into the DOM: nothing inline, nothing from elsewhere. It keeps the API key in localStorage, so no other
# site may frame it or run script in it. FastAPI's /docs and /redoc load Swagger UI / ReDoc from a CDN.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
_DOCS = ("/docs", "/redoc")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY")]


class SecurityHeadersMiddleware:
    """CSP, nosniff, no referrer and no framing on every response (errors and static files included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"].startswith(_DOCS) else PAGE_CSP
        extra = [*SECURITY_HEADERS, (b"content-security-policy", csp.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
