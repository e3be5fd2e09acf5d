"""Who is asking: a PoC or operator token (Authorization: Bearer, or the session cookie).

Verification is :meth:`pocsync.tokens.TokenCache.verify` (pinned ES256, issuer key from the manifest,
nothing from the header, required claims, issuer scope, live subject whose holder epoch the token
does not predate).  Signature checks are cached briefly; the entry check runs on every request.

Handlers that need a token are decorated with :func:`requires`: the body starts with verified claims.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from pocsync import tokens
from pocsync.api.problems import problem
from pocsync.live import readcache
from pocsync.live.runtime import RUNTIME, Runtime
from pocsync.store import Store

SESSION_COOKIE = "pocsync_session"
MAX_TOKEN = 8192
CACHE = web.AppKey("token_cache", tokens.TokenCache)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ClaimsHandler = Callable[[web.Request, tokens.Claims], Awaitable[web.StreamResponse]]
#: a check after authentication (a rate limit): None to go on, or the response that refuses the request
Limit = Callable[[web.Request, tokens.Claims], "web.Response | None"]
#: where the token comes from when not from the request's credentials: the token, or a response refusing it
TokenSource = Callable[[web.Request], Awaitable["str | web.Response"]]


def requires(
    *scopes: str, limit: Limit | None = None, token: TokenSource | None = None
) -> Callable[[ClaimsHandler], Handler]:
    """Decorate a handler ``(request, claims)``: it runs only for a token of one of ``scopes`` (401/403 problem
    otherwise, see :func:`authenticate`) that ``limit`` lets through."""

    def decorate(handler: ClaimsHandler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            given = None
            if token is not None:
                got = await token(request)
                if isinstance(got, web.Response):
                    return got
                given = got
            claims = await authenticate(request, request.app[RUNTIME], scopes=scopes, token=given)
            if isinstance(claims, web.Response):
                return claims
            refused = limit(request, claims) if limit is not None else None
            return refused if refused is not None else await handler(request, claims)

        return guarded

    return decorate


def token_of(request: web.Request) -> str | None:
    return credential_of(request)[0]


def credential_of(request: web.Request) -> tuple[str | None, str]:
    """(token, "bearer" | "session"): the Authorization header first, else the session cookie."""
    h = request.headers.get("Authorization", "")
    if h.startswith("Bearer "):
        return h[len("Bearer ") :].strip(), "bearer"
    return request.cookies.get(SESSION_COOKIE), "session"


async def authenticate(
    request: web.Request, rt: Runtime, *, scopes: tuple[str, ...], token: str | None = None
) -> tokens.Claims | web.Response:
    """The verified claims, or a 401/403 problem response.  ``token`` overrides the request's own (a bearer)."""
    kind = "bearer"
    if token is None:
        token, kind = credential_of(request)
    if not token:
        rt.counters["token_rejected:missing"] += 1
        return problem(
            401,
            "authentication required",
            "send a PoC or operator token",
            reason="missing",
            headers={"WWW-Authenticate": 'Bearer realm="pocsync"'},
        )
    rc = request.app.get(readcache.READ_CACHE)
    now_s = int(time.time())
    if rc is not None:
        # issue 13: a token already verified in full (signature, claims, subject, revocation) at the current store
        # version is accepted again without re-parsing it, until it expires or anything is committed (ADR 21)
        gen = await rc.fresh()
        hit = rc.verified.get((token, kind))
        if hit is not None and now_s < hit.exp:
            claims = hit
            if claims.scope not in scopes:
                rt.counters["token_rejected:insufficient_scope"] += 1
                return problem(
                    403, "forbidden", f"a {claims.scope} token cannot use this resource", reason="insufficient_scope"
                )
            return claims
    m = await (rc.get_manifest() if rc is not None else rt.manifest())  # cached per store version
    try:
        cache = request.app[CACHE]
        entry_lookup = await _entry_lookup(rt, token, rc)
        # A session cookie is a token this node issued for itself (audience pocsync-session:<node>, ADR 13).
        audience = tokens.session_audience(rt.me) if kind == "session" else tokens.AUDIENCE
        claims = cache.verify(token, manifest=m, now_s=now_s, lookup_entry=entry_lookup, audience=audience)
        if kind == "session" and claims.issuer != rt.me:
            raise tokens.TokenError("a session cookie is valid only at the node that set it", reason="wrong_audience")
        if rc is not None and rc.gen == gen:  # verified against what the store held at this version
            rc.remember_verified((token, kind), claims)
    except tokens.TokenError as exc:
        rt.counters[f"token_rejected:{exc.reason}"] += 1
        return problem(
            401,
            "token refused",
            exc.message,
            reason=exc.reason,
            headers={"WWW-Authenticate": 'Bearer realm="pocsync", error="invalid_token"'},
        )
    if claims.scope not in scopes:
        rt.counters["token_rejected:insufficient_scope"] += 1
        return problem(
            403, "forbidden", f"a {claims.scope} token cannot use this resource", reason="insufficient_scope"
        )
    return claims


async def _entry_lookup(
    rt: Runtime, token: str, rc: readcache.ReadCache | None = None
) -> Callable[[str], tokens.SubjectState]:
    """Pre-fetch what the log says of the subject (entry, latest delete/withdrawal) and whether the
    token's jti is on this node's deny-list, on the store thread, so verification stays synchronous."""
    try:
        _, unverified = tokens.unverified_parts(token)
    except tokens.TokenError:
        unverified = {}
    sub, jti, parent = unverified.get("sub"), unverified.get("jti"), unverified.get("parent_jti")
    sub = sub if isinstance(sub, str) and len(sub) <= 64 else None
    jti = jti if isinstance(jti, str) else None
    parent = parent if isinstance(parent, str) else None  # a session token: revoked with its parent (ADR 13)
    if rc is not None:  # the same answer, cached until the next commit to the store (any commit)
        found = await rc.subject_state(sub, jti, parent)
    elif sub and "/" in sub:
        found = await rt.worker.run(Store.subject_state, sub, jti, parent)
    else:
        found = {
            "entry": None,
            "dead_since": None,
            "revoked": any([bool(j) and await rt.worker.run(Store.is_revoked, j) for j in (jti, parent)]),
        }
    state = tokens.SubjectState(found["entry"], found["dead_since"], found["revoked"])

    def lookup(key: str) -> tokens.SubjectState:
        return state if key == sub else tokens.SubjectState(None)

    return lookup
