"""New-arrival notices POSTed as JSON to KB_WEBHOOK_URL, retried, each need ↔ candidate pair sent once.

urllib, not a client library: one POST with a timeout is all it does. A notice is marked sent (kb/index/pairs.py)
only once the receiver answered 2xx, so a failed delivery is tried again at the next ingest, never twice after
a success.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from kb.index.pairs import PairStore
from kb.search.match.alerts import new_arrivals, notices
from kb.search.match.matcher import Matcher
from kb.settings import Settings

log = logging.getLogger(__name__)
FIRST_PAUSE_S = 1.0


def post_json(url: str, payload: dict[str, Any], timeout: float) -> int:
    """POST ``payload``; the HTTP status (0 when no answer came)."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the operator's configured URL)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        log.warning("webhook %s: %s", url, exc)
        return 0


def deliver(url: str, payload: dict[str, Any], *, retries: int, timeout: float,
            sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST with up to ``retries`` retries after a 5xx, a 429 or no answer (pauses 1, 2, 4 … s); 2xx is success."""
    pause = FIRST_PAUSE_S
    for attempt in range(retries + 1):
        status = post_json(url, payload, timeout)
        if 200 <= status < 300:
            return True
        if status and status < 500 and status != 429:
            log.warning("webhook %s refused the notice: HTTP %s", url, status)
            return False
        if attempt < retries:
            sleep(pause)
            pause *= 2
    return False


def notify_new(settings: Settings, since: float, matcher: Matcher | None = None,
               threshold: float | None = None) -> dict[str, Any]:
    """Send the notices of records stored after ``since`` that were not sent before; what was sent."""
    own = matcher is None
    m = matcher or Matcher(settings)
    try:
        with PairStore(settings.market_path) as store:
            fresh = [n for n in notices(new_arrivals(m, store, since, threshold)) if n["key"] not in store.sent([str(n["key"])])]
            if not fresh or not settings.webhook_url:
                return {"sent": 0, "pending": len(fresh)}
            payload = {"event": "new_arrivals", "since": since, "notices": fresh}
            ok = deliver(settings.webhook_url, payload, retries=settings.webhook_retries,
                         timeout=settings.webhook_timeout_s)
            if ok:
                store.mark_sent([str(n["key"]) for n in fresh])
            return {"sent": len(fresh) if ok else 0, "pending": 0 if ok else len(fresh)}
    finally:
        if own:
            m.close()
