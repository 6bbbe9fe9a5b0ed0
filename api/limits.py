"""Request limits: body size (before the body is buffered) and a per-key token bucket."""

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
