"""API keys (KB_API_KEYS) from X-API-Key or Authorization: Bearer, and the per-caller rate limit."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from api.errors import UnauthorizedError, WritesDisabledError
from api.limits import RateLimiter
from kb.settings import Settings


def presented_key(request: Request) -> str | None:
    """The key a client sent, if any."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def key_is_valid(key: str, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    given = key.encode("utf-8")
    return any(hmac.compare_digest(given, k.encode("utf-8")) for k in keys)


def _caller(key: str | None, request: Request) -> str:
    """Rate-limit identity: a key's hash, else the client address."""
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


def _check(request: Request, *, write: bool) -> str:
    settings: Settings = request.app.state.settings
    keys = settings.api_key_list
    key = presented_key(request)
    if write and not settings.allow_writes:
        raise WritesDisabledError("writes are disabled on this server (KB_ALLOW_WRITES=false)")
    needs_key = bool(keys) and (write or not settings.public_read)
    if key is not None and keys and not key_is_valid(key, keys):
        raise UnauthorizedError("invalid API key")
    if needs_key and key is None:
        raise UnauthorizedError("an API key is required: send X-API-Key or Authorization: Bearer")
    caller = _caller(key, request)
    limiter: RateLimiter = request.app.state.limiter
    limiter.check(caller)
    return caller


def read_access(request: Request) -> str:
    """Readers: a valid key when KB_PUBLIC_READ=false (a wrong key is refused either way)."""
    return _check(request, write=False)


def write_access(request: Request) -> str:
    """Writers: always a valid key (create_app refuses to start without one unless --dev)."""
    return _check(request, write=True)


ReadAccess = Annotated[str, Depends(read_access)]
WriteAccess = Annotated[str, Depends(write_access)]
