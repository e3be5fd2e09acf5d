"""Tokens and sign-in (ADR 13; docs/SECURITY.md): renewing a token, the web pages' session cookie, whoami.

* ``POST /v1/token/renew`` — a fresh token for the holder of a valid one.
* ``POST /v1/session`` / ``DELETE /v1/session`` — sign in to the web pages (HttpOnly cookie);
  ``GET /v1/session`` — whether the presented cookie or token would be let in (always 200, with the reason).
* ``GET /v1/whoami`` — who the presented token or session is.

Every token issued is written to the audit log.  Renewals and sign-ins are rate-limited per subject (429).
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from pocsync import tokens
from pocsync.api.audit import audit as _audit
from pocsync.api.auth import SESSION_COOKIE, authenticate, requires, token_of
from pocsync.api.peer import RateLimiter
from pocsync.api.problems import problem
from pocsync.core import jsonc
from pocsync.errors import PocsyncError
from pocsync.live.runtime import RUNTIME

# Renewals and sign-ins mint tokens (each a new jti, each renewal a deny-list row): limited per subject, or one
# token could mint a stream of tokens, each with a fresh read allowance, and grow the deny-list at will.
ISSUE_LIMITER = web.AppKey("issue_limiter", RateLimiter)
ISSUES_PER_SECOND = 2
RENEW_TTL_S = 86_400  # renewed tokens live a day: the old one is revoked only at this node (ADR 13)


def issue_limit(request: web.Request, claims: tokens.Claims) -> web.Response | None:
    """Renewals and sign-ins per subject (ISSUE_LIMITER)."""
    if request.app[ISSUE_LIMITER].allow(claims.subject):
        return None
    request.app[RUNTIME].counters["token_rejected:issue_rate_limited"] += 1
    return problem(
        429,
        "too many requests",
        f"too many renewals or sign-ins for {claims.subject}",
        reason="rate_limited",
        headers={"Retry-After": "1"},
    )


@requires("directory", "health", limit=issue_limit)
async def renew(request: web.Request, claims: tokens.Claims) -> web.Response:
    """A fresh token; the presented one is revoked at this node (ADR 13).  Renewals keep the first
    token's ``auth_time`` and never reach past ``auth_time + MAX_TOTAL_LIFETIME_S``."""
    rt = request.app[RUNTIME]
    m = await rt.manifest()
    now_s = int(time.time())
    try:
        token = tokens.renew(
            claims,
            issuer=rt.me,
            kid=rt.cfg.node.token_kid or f"{rt.me}:t1",
            key=rt.nd.token_key(),
            manifest=m,
            now_s=now_s,
            ttl_s=RENEW_TTL_S,
        )
    except tokens.TokenError as exc:
        return problem(403, "cannot renew", exc.message, reason=exc.reason)
    await rt.worker.run(lambda s: s.revoke_token(claims.jti, exp=claims.exp, reason="renewed"))
    await _audit(request, claims, "token.renew", claims.subject, "ok")
    new = tokens.verify_signature(token, manifest=m, now_s=now_s)
    return web.json_response({"token": token, "expires_in": new.exp - now_s})


async def _body_token(request: web.Request) -> str | web.Response:
    """The token a sign-in sends in its body, ``{"token": "…"}``, or a 400 problem."""
    try:
        body = await request.read()
        data = jsonc.loads(body)  # strict and depth-capped: never a RecursionError (issue 11, case 10)
        token = data["token"].strip()
    except (PocsyncError, KeyError, TypeError, AttributeError):
        return problem(400, "bad request", 'send {"token": "…"}', reason="bad_request")
    return str(token)


@requires("directory", "health", limit=issue_limit, token=_body_token)
async def session_start(request: web.Request, claims: tokens.Claims) -> web.Response:
    """Sign in: the presented token is checked, and the cookie holds a *session* token this node issues
    for itself (audience ``pocsync-session:<node>``, at most SESSION_TTL_S, never past the token's exp),
    so that signing out can revoke it everywhere it is valid (ADR 13)."""
    rt = request.app[RUNTIME]
    now_s = int(time.time())
    exp = min(claims.exp, now_s + tokens.SESSION_TTL_S)
    session = tokens.issue_token(
        issuer=rt.me,
        kid=rt.cfg.node.token_kid or f"{rt.me}:t1",
        key=rt.nd.token_key(),
        subject=claims.subject,
        scope=claims.scope,
        now_s=now_s,
        ttl_s=exp - now_s,
        auth_time=claims.auth_time,
        audience=tokens.session_audience(rt.me),
        exp=exp,
        parent=claims.jti,
    )
    resp = web.json_response({"subject": claims.subject, "scope": claims.scope, "expires": exp})
    resp.set_cookie(
        SESSION_COOKIE, session, httponly=True, secure=True, samesite="Strict", path="/", max_age=max(0, exp - now_s)
    )
    await _audit(request, claims, "session.start", claims.subject, "ok")
    return resp


async def session_status(request: web.Request) -> web.Response:
    """Whether the presented credentials (session cookie, or a Bearer token to try) would be let in: always 200.

    The web pages ask this before signing in and on load, so that a refused or absent token is explained
    in words without a failed request (which browsers log as an error).
    """
    rt = request.app[RUNTIME]
    if not token_of(request):
        return web.json_response({"signed_in": False, "reason": "missing", "detail": "no token or session"})
    claims = await authenticate(request, rt, scopes=("directory", "health"))
    if isinstance(claims, web.Response):
        p = json.loads(claims.body)  # type: ignore[arg-type]
        return web.json_response(
            {"signed_in": False, "reason": p.get("reason", "refused"), "detail": p.get("detail", "")}
        )
    return web.json_response(
        {
            "signed_in": True,
            "subject": claims.subject,
            "scope": claims.scope,
            "issuer": claims.issuer,
            "expires": claims.exp,
            "node": rt.me,
        }
    )


async def session_end(request: web.Request) -> web.Response:
    """Sign out: the session token goes on this node's deny-list (the only node where it is valid)."""
    rt = request.app[RUNTIME]
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            m = await rt.manifest()
            c = tokens.verify_session(cookie, node=rt.me, manifest=m, now_s=int(time.time()))
            await rt.worker.run(lambda s: s.revoke_token(c.jti, exp=c.exp, reason="signed_out"))
            await _audit(request, c, "session.end", c.subject, "ok")
        except tokens.TokenError:
            pass  # nothing valid to revoke: the cookie is cleared all the same
    resp = web.json_response({"ok": True})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@requires("directory", "health")
async def whoami(request: web.Request, claims: tokens.Claims) -> web.Response:
    rt = request.app[RUNTIME]
    return web.json_response(
        {
            "subject": claims.subject,
            "scope": claims.scope,
            "issuer": claims.issuer,
            "expires": claims.exp,
            "node": rt.me,
        }
    )


def add_routes(app: web.Application) -> None:
    app[ISSUE_LIMITER] = RateLimiter(ISSUES_PER_SECOND)
    app.router.add_post("/v1/token/renew", renew)
    app.router.add_post("/v1/session", session_start)
    app.router.add_get("/v1/session", session_status)
    app.router.add_delete("/v1/session", session_end)
    app.router.add_get("/v1/whoami", whoami)
