"""API keys (KB_API_KEYS) from X-API-Key or Authorization: Bearer, their roles, wrong-key back-off, and the
per-caller rate limit.

Every request has a ``Caller`` (``current_caller``): the key's name and role, or the anonymous reader. The role
decides what the request may see (``Caller.visible``, handed to the search worker and the catalogue, which pass
it to the manifest) and do: reader (public records), bureau (internal records, contacts, pair statuses), admin
(writes and deletes).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ForbiddenError, UnauthorizedError, WritesDisabledError
from api.limits import AuthFailures, RateLimiter
from kb.models import ROLES, visible_to
from kb.settings import ApiKey, Settings

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's name and role (``anonymous`` for no key), and the rate-limit identity."""

    name: str
    role: str
    limit_id: str = ""

    @property
    def visible(self) -> frozenset[str]:
        """The visibilities this caller may read (kb.models.visible_to)."""
        return visible_to(self.role)

    def allowed(self, role: str) -> bool:
        """Whether this caller's role is ``role`` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


def presented_key(request: Request) -> str | None:
    """The key a client sent, if any."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def matching_key(key: str, entries: list[ApiKey]) -> ApiKey | None:
    """The configured entry of ``key``, compared in constant time against every one."""
    given, found = key.encode("utf-8"), None
    for e in entries:
        if hmac.compare_digest(given, e.key.encode("utf-8")):
            found = e
    return found


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


def _limit_id(key: str | None, request: Request) -> str:
    """Rate-limit identity: a valid key's hash (each key its own budget, wherever it calls from), else the
    client address (anonymous callers on one host share one)."""
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return "ip:" + client_address(request)


def _identify(request: Request, settings: Settings) -> Caller:
    """The caller a request's key names; a wrong key is refused (and counted), no key is the anonymous caller:
    a reader, or admin in development mode without keys (``kb serve --dev``: anyone may write there anyway)."""
    entries = settings.api_key_entries
    key = presented_key(request)
    if key is not None and entries:
        if not verify_key(request, key, [e.key for e in entries]):
            raise UnauthorizedError("invalid API key")
        entry = matching_key(key, entries)
        assert entry is not None
        return Caller(entry.name, entry.role, _limit_id(key, request))
    # a key nobody configured (dev mode has none) is no identity: else each made-up key had its own budget
    role = "admin" if settings.dev and not entries else "reader"
    return Caller(ANONYMOUS, role, _limit_id(None, request))


def current_caller(request: Request) -> Caller:
    """The (name, role) of the request's caller, checked once per request: the function other modules call
    (e.g. to record which key changed a pair's status). UnauthorizedError for a wrong key."""
    caller = getattr(request.state, "caller", None)
    if caller is None:
        caller = _identify(request, request.app.state.settings)
        request.state.caller = caller
    return caller  # type: ignore[no-any-return]


def _check(request: Request, *, role: str, write: bool) -> Caller:
    settings: Settings = request.app.state.settings
    if write and not settings.allow_writes:
        raise WritesDisabledError("writes are disabled on this server (KB_ALLOW_WRITES=false)")
    caller = current_caller(request)
    keyed = bool(settings.api_key_entries)
    if caller.name == ANONYMOUS and keyed and (write or role != "reader" or not settings.public_read):
        raise UnauthorizedError("an API key is required: send X-API-Key or Authorization: Bearer")
    if not caller.allowed(role):
        raise ForbiddenError(f"此密钥（{caller.name}）的角色为 {caller.role}，此操作需要 {role} 角色")
    limiter: RateLimiter = request.app.state.limiter
    limiter.check(caller.limit_id)
    return caller


def read_access(request: Request) -> Caller:
    """Readers: a valid key when KB_PUBLIC_READ=false (a wrong key is refused either way)."""
    return _check(request, role="reader", write=False)


def bureau_access(request: Request) -> Caller:
    """Reads for the science bureau (internal records, contacts, pair statuses): a bureau or admin key."""
    return _check(request, role="bureau", write=False)


def write_access(request: Request) -> Caller:
    """Writers: an admin key (create_app refuses to start without a key unless --dev)."""
    return _check(request, role="admin", write=True)


ReadAccess = Annotated[Caller, Depends(read_access)]
BureauAccess = Annotated[Caller, Depends(bureau_access)]
WriteAccess = Annotated[Caller, Depends(write_access)]
