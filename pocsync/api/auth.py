"""Who is asking: a PoC or operator token (Authorization: Bearer, or the session cookie).

Verification is :func:`pocsync.tokens.verify_token` (pinned ES256, issuer key from the manifest,
nothing from the header, required claims, issuer scope, live subject whose holder epoch the token
does not predate).  Signature checks are cached briefly; the entry check runs on every request.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from pocsync import tokens
from pocsync.api.problems import problem
from pocsync.node.runtime import Runtime
from pocsync.store import Store

SESSION_COOKIE = "pocsync_session"
MAX_TOKEN = 8192
CACHE = web.AppKey("token_cache", tokens.TokenCache)


def token_of(request: web.Request) -> str | None:
    h = request.headers.get("Authorization", "")
    if h.startswith("Bearer "):
        return h[len("Bearer "):].strip()
    return request.cookies.get(SESSION_COOKIE)


async def authenticate(request: web.Request, rt: Runtime, *, scopes: tuple[str, ...], token: str | None = None) -> Any:
    """The verified claims, or a 401/403 problem response.  ``token`` overrides the request's own."""
    token = token or token_of(request)
    if not token:
        rt.counters["token_rejected:missing"] += 1
        return problem(401, "authentication required", "send a PoC or operator token", reason="missing",
                       headers={"WWW-Authenticate": 'Bearer realm="pocsync"'})
    m = await rt.manifest()
    try:
        cache = request.app[CACHE]
        entry_lookup = await _entry_lookup(rt, token)
        claims = cache.verify(token, manifest=m, now_s=int(time.time()), lookup_entry=entry_lookup)
    except tokens.TokenError as exc:
        rt.counters[f"token_rejected:{exc.reason}"] += 1
        return problem(401, "token refused", exc.message, reason=exc.reason,
                       headers={"WWW-Authenticate": 'Bearer realm="pocsync", error="invalid_token"'})
    if claims.scope not in scopes:
        rt.counters["token_rejected:insufficient_scope"] += 1
        return problem(403, "forbidden", f"a {claims.scope} token cannot use this resource", reason="insufficient_scope")
    return claims


async def _entry_lookup(rt: Runtime, token: str):  # noqa: ANN202
    """Pre-fetch the subject's entry on the store thread so verification stays synchronous."""
    sub = tokens.unverified_subject(token)
    row = await rt.worker.run(Store.entry, sub) if sub and "/" in sub else None
    entry = row["entry"] if row else None
    return lambda key: entry if key == sub else None
