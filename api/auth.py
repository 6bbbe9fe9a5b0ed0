"""API keys (KB_API_KEYS) from X-API-Key or Authorization: Bearer, wrong-key back-off, and the per-caller rate limit."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from api.errors import UnauthorizedError, WritesDisabledError
from api.limits import AuthFailures, RateLimiter
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


def verify_key(request: Request, key: str, keys: list[str]) -> bool:
    """Whether ``key`` is valid, counting a wrong one against the client's address (KB_AUTH_FAILURES);
    RateLimitedError while the address backs off, before the key is looked at, so a guess learns nothing."""
    failures: AuthFailures = request.app.state.auth_failures
    failures.check(client_address(request))
    if key_is_valid(key, keys):
        return True
    failures.failed(client_address(request))
    return False


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _caller(key: str | None, request: Request) -> str:
    """Rate-limit identity: a valid key's hash (each key its own budget, wherever it calls from), else the
    client address (anonymous callers on one host share one)."""
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return "ip:" + client_address(request)


def _check(request: Request, *, write: bool) -> str:
    settings: Settings = request.app.state.settings
    keys = settings.api_key_list
    key = presented_key(request)
    if write and not settings.allow_writes:
        raise WritesDisabledError("writes are disabled on this server (KB_ALLOW_WRITES=false)")
    if key is not None and keys and not verify_key(request, key, keys):
        raise UnauthorizedError("invalid API key")
    needs_key = bool(keys) and (write or not settings.public_read)
    if needs_key and key is None:
        raise UnauthorizedError("an API key is required: send X-API-Key or Authorization: Bearer")
    # a key nobody configured (dev mode has none) is no identity: else each made-up key had its own budget
    caller = _caller(key if keys else None, request)
    limiter: RateLimiter = request.app.state.limiter
    limiter.check(caller)
    return caller


def read_access(request: Request) -> str:
    """Readers: a valid key when KB_PUBLIC_READ=false (a wrong key is refused either way)."""
    return _check(request, write=False)


def write_access(request: Request) -> str:
    """Writers: always a valid key (create_app refuses to start without one unless --dev)."""
    return _check(request, write=True)


def key_name(request: Request) -> str:
    """The name of the caller's API key, kept with each pair status change: the ``name`` of a ``name:role:key``
    entry of KB_API_KEYS, else ``key<n>`` (its place in the list); ``anonymous`` without a key (dev mode)."""
    settings: Settings = request.app.state.settings
    given = presented_key(request)
    if given is None:
        return "anonymous"
    for n, entry in enumerate(settings.api_key_list, start=1):
        parts = entry.split(":", 2)
        name, secret = (parts[0], parts[2]) if len(parts) == 3 else (f"key{n}", entry)
        if hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8")):
            return name
    return "anonymous"


def bureau_access(request: Request) -> str:
    """Match records (对接记录): a valid key whenever keys are configured, even where reads are public; the key's
    name, for the history."""
    _check(request, write=False)
    if request.app.state.settings.api_key_list and presented_key(request) is None:
        raise UnauthorizedError("an API key is required: send X-API-Key or Authorization: Bearer")
    return key_name(request)


ReadAccess = Annotated[str, Depends(read_access)]
BureauAccess = Annotated[str, Depends(bureau_access)]
WriteAccess = Annotated[str, Depends(write_access)]
