"""The command line's fast path: ``kb search``, ``ask`` and ``match`` ask a running ``kb serve`` (which holds the
model and the indexes) instead of loading them, and fall back to doing the work in-process.

Which server: KB_URL, else the one ``kb serve`` advertised in KB_HOME/serve.json (same KB_HOME, so the same
index) while its process lives. stdlib urllib, not httpx: its import alone took a tenth of the time budget.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kb.errors import KBError
from kb.settings import Settings

SERVE_FILE = "serve.json"


class RemoteError(KBError):
    """The server refused the request (bad input, not found, ...): the same answer in-process would give."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def advertise(settings: Settings, host: str, port: int) -> None:
    """Write KB_HOME/serve.json for this server's lifetime (removed at exit if it is still ours)."""
    path = settings.home / SERVE_FILE
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    local = f"[{local}]" if ":" in local else local
    settings.home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": f"http://{local}:{port}", "pid": os.getpid()}), encoding="utf-8")

    def forget() -> None:
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass

    atexit.register(forget)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def server_url(settings: Settings) -> str | None:
    """KB_URL, or the live server advertised in KB_HOME; None for in-process (KB_URL=off, or no server)."""
    if settings.url == "off":
        return None
    if settings.url:
        return settings.url
    try:
        info = json.loads((Path(settings.home) / SERVE_FILE).read_text(encoding="utf-8"))
        url, pid = str(info["url"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # only a server on this machine: the file must not be a way to send our API key elsewhere
    loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
    return url if loopback and _alive(pid) else None


def call(settings: Settings, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """POST ``body`` to the server; its JSON answer, or None to do the work in-process (no server, unreachable,
    or a server error). A refusal (4xx) is raised as RemoteError, as in-process would raise it."""
    url = server_url(settings)
    if url is None:
        return None
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.api_key_list:
        headers["X-API-Key"] = settings.api_key_list[0]
    req = urllib.request.Request(url + path, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a proxy must not catch a local call
    try:
        with opener.open(req, timeout=settings.search_timeout_s + 5) as resp:
            return dict(json.loads(resp.read().decode("utf-8")))
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            raise _refusal(exc) from None
        _warn(settings, f"{url} answered HTTP {exc.code}")
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        _warn(settings, f"cannot reach {url} ({exc.__class__.__name__})")
    return None


def _refusal(exc: urllib.error.HTTPError) -> RemoteError:
    try:
        err = json.loads(exc.read().decode("utf-8"))["error"]
        return RemoteError(exc.code, str(err["code"]), str(err["message"]))
    except (OSError, ValueError, KeyError, TypeError):
        return RemoteError(exc.code, "remote_error", f"the server answered HTTP {exc.code}")


def _warn(settings: Settings, why: str) -> None:
    if settings.url:  # asked for explicitly: say why it was not used; a stale serve.json is not worth a line
        print(f"warning: {why}; working in-process", file=sys.stderr)
