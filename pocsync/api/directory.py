"""The PoC directory API (issue 4; docs/SECURITY.md, docs/ARCHITECTURE.md §2).  Only PoC tokens (scope ``directory``) read entries.

* ``GET /v1/entries`` — filters ``state``, ``kind``, ``network``, ``q`` (full-text search, matches best first:
  pocsync/store/search.py); ``page``/``per_page``; ETag from the view digest and the query, ``If-None-Match`` → 304.
* ``GET /v1/entries/{state}/{kind}`` — the entry with provenance: winning origin, change-set id,
  hlc, author, and every other origin's latest version.
* ``GET /v1/divergences`` — keys whose origins' versions differ, field by field.
* ``GET /v1/networks`` — which regional directories list each State's PoCs.
* ``GET /v1/export?format=json|csv|vcard`` — the whole directory.
* ``POST /v1/token/renew`` — a fresh token for the holder of a valid one.
* ``POST /v1/session`` / ``DELETE /v1/session`` — sign in to the web pages (HttpOnly cookie);
  ``GET /v1/session`` — whether the presented cookie or token would be let in (always 200, with the reason).

Every read and every token issued is written to the audit log.  A per-token rate limit answers 429.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aiohttp import web

from pocsync import clock, tokens
from pocsync.api.auth import SESSION_COOKIE, authenticate, requires, token_of
from pocsync.api.peer import RateLimiter
from pocsync.api.problems import problem
from pocsync.core import jsonc
from pocsync.directory import divergence, freshness
from pocsync.errors import PocsyncError
from pocsync.live import readcache
from pocsync.live.runtime import RUNTIME
from pocsync.store import Store, search

READ_LIMITER = web.AppKey("read_limiter", RateLimiter)
# Renewals and sign-ins mint tokens (each a new jti, each renewal a deny-list row): limited per subject, or one
# token could mint a stream of tokens, each with a fresh read allowance, and grow the deny-list at will.
ISSUE_LIMITER = web.AppKey("issue_limiter", RateLimiter)
ISSUES_PER_SECOND = 2


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


MAX_PER_PAGE = 500
RENEW_TTL_S = 86_400  # renewed tokens live a day: the old one is revoked only at this node (ADR 13)


def read_limit(request: web.Request, claims: tokens.Claims) -> web.Response | None:
    """Directory reads per token (READ_LIMITER, sync.toml [api] token_requests_per_second)."""
    if request.app[READ_LIMITER].allow(claims.jti):
        return None
    request.app[RUNTIME].counters["token_rejected:rate_limited"] += 1
    return problem(
        429,
        "too many requests",
        "this token exceeds its request rate",
        reason="rate_limited",
        headers={"Retry-After": "1"},
    )


#: a directory read: a PoC token within its request rate
reader = requires("directory", limit=read_limit)


async def _audit(
    request: web.Request, claims: tokens.Claims, action: str, target: str, result: str, detail: str = ""
) -> None:
    """Every read is audited; the row is group-committed within AUDIT_WINDOW_S (ADR 21), never awaited here."""
    who = f"{claims.subject} (token {claims.jti[:8]} from {claims.issuer})"
    buf = request.app.get(readcache.AUDIT)
    if buf is not None:
        buf.add(actor=who, action=action, target=target, result=result, detail=detail)
        return
    rt = request.app[RUNTIME]
    await rt.worker.run(lambda s: s.audit(actor=who, action=action, target=target, result=result, detail=detail))


def _matches(row: dict[str, Any], q: dict[str, str]) -> bool:
    e = row["entry"]
    if "state" in q and e.get("state") != q["state"].upper():
        return False
    if "kind" in q and e.get("kind") != q["kind"]:
        return False
    if "network" in q and q["network"] not in (e.get("networks") or []):
        return False
    return True


def _query(request: web.Request) -> dict[str, str] | web.Response:
    """The filters of GET /v1/entries; ``q`` trimmed, or a 400 naming it when empty or too long."""
    q = {k: v for k, v in request.query.items() if k in ("state", "kind", "network") and v}
    if "q" in request.query:
        try:
            q["q"] = search.check_query(request.query["q"])
        except search.SearchError as exc:
            return problem(400, "bad request", f"query parameter q: {exc.message}", reason="bad_request")
    return q


async def _selected(request: web.Request, rows_all: list[dict[str, Any]], q: dict[str, str]) -> list[dict[str, Any]]:
    """The rows matching the filters; with ``q``, the full-text search's matches, best first (store/search.py)."""
    if "q" not in q:
        return [r for r in rows_all if _matches(r, q)]
    ranked = await request.app[RUNTIME].worker.run(lambda s: search.search(s.conn, q["q"]))
    by_key = {r["key"]: r for r in rows_all}
    return [by_key[k] for k in ranked if k in by_key and _matches(by_key[k], q)]


def _public(row: dict[str, Any], listed_by: list[str]) -> dict[str, Any]:
    """``listed_by``: every directory (origin) whose latest assertion of the key lists it, not only the winner."""
    return {
        "key": row["key"],
        "entry": row["entry"],
        "listed_by": listed_by,
        "provenance": {
            "origin": row["origin"],
            "cs_id": row["cs_id"],
            "index": row["index"],
            "hlc": row["hlc"],
            "author": row["author"],
        },
    }


def _fresh(out: dict[str, Any], fresh: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``last_modified``, ``last_verified``, ``last_confirmed``, per-channel ``verification`` and ``overdue``
    (PROTOCOL.md §15.4; the node's clock judges overdue) beside the entry."""
    return {**out, **fresh.get(out["key"], {})}


def _listed_by(networks: dict[str, dict[str, list[str]]], key: str) -> list[str]:
    state, _, kind = key.partition("/")
    return networks.get(state, {}).get(kind, [])


@reader
async def list_entries(request: web.Request, claims: tokens.Claims) -> web.Response:
    q = _query(request)
    if isinstance(q, web.Response):
        return q
    try:
        page = max(1, int(request.query.get("page", "1")))
        per_page = min(MAX_PER_PAGE, max(1, int(request.query.get("per_page", "100"))))
    except ValueError:
        return problem(400, "bad request", "page and per_page must be integers", reason="bad_request")
    if "kind" in q and q["kind"] not in ("diplomatic", "technical"):
        return problem(400, "bad request", "kind must be diplomatic or technical", reason="bad_request")
    cache = request.app[readcache.READ_CACHE]
    content, rows_all = await cache.view_rows()  # decoded once per view digest and listing, not per request
    digest, listing = content  # a losing origin's listing changes the answer, not the view digest
    fresh = await cache.freshness(clock.now_ms())  # per store version and second: overdue moves with time
    overdue = tuple(
        sorted((k, json.dumps(f["overdue"], sort_keys=True)) for k, f in fresh.items() if f["overdue"])
    )  # becoming overdue (or overdue on more counts) changes the answer
    qkey = (tuple(sorted(q.items())), page, per_page, overdue)
    hit = cache.body(qkey)
    if hit is None:
        tag = f"{digest}|{listing}|{overdue}|{sorted(q.items())}|{page}|{per_page}"
        etag = '"' + hashlib.sha256(tag.encode()).hexdigest()[:32] + '"'
        rows = await _selected(request, rows_all, q)
        start = (page - 1) * per_page
        nets = cache.networks
        body = {
            "entries": [_fresh(_public(r, _listed_by(nets, r["key"])), fresh) for r in rows[start : start + per_page]],
            "total": len(rows),
            "page": page,
            "per_page": per_page,
            "digest": digest,
        }
        hit = (etag, json.dumps(body).encode(), len(rows))
        cache.keep_body(content, qkey, hit)
    etag, raw, matched = hit
    if request.headers.get("If-None-Match") == etag:
        await _audit(request, claims, "entries.list", json.dumps(q, sort_keys=True), "not_modified")
        return web.Response(status=304, headers={"ETag": etag})
    await _audit(request, claims, "entries.list", json.dumps(q, sort_keys=True), "ok", f"{matched} matched")
    return web.Response(body=raw, headers={"ETag": etag, "Content-Type": "application/json; charset=utf-8"})


@reader
async def get_entry(request: web.Request, claims: tokens.Claims) -> web.Response:
    rt = request.app[RUNTIME]
    key = f"{request.match_info['state'].upper()}/{request.match_info['kind']}"
    cache = request.app[readcache.READ_CACHE]
    gen = await cache.fresh()
    fresh = await cache.freshness(clock.now_ms())
    bkey = (key, json.dumps(fresh.get(key, {}).get("overdue"), sort_keys=True))  # overdue moves with time
    if bkey in cache.entry_bodies:  # rendered once per store version (data_version), not per request
        hit = cache.entry_bodies[bkey]
    else:
        row = await rt.worker.run(Store.entry, key)
        if row is None:
            hit = None
        else:
            out = _fresh(_public(row, sorted(v["origin"] for v in row["versions"] if v["op"] == "put")), fresh)
            out["versions"] = row["versions"]
            out["divergent_fields"] = next((d["fields"] for d in divergence.divergences({key: row["versions"]})), {})
            raw = json.dumps(out).encode()
            hit = ('"' + hashlib.sha256(raw).hexdigest()[:32] + '"', raw)
        if cache.gen == gen and len(cache.entry_bodies) < 10_000:
            cache.entry_bodies[bkey] = hit
    if hit is None:
        await _audit(request, claims, "entries.get", key, "not_found")
        return problem(404, "not found", f"{key} is not in the directory", reason="not_found")
    etag, raw = hit
    if request.headers.get("If-None-Match") == etag:
        await _audit(request, claims, "entries.get", key, "not_modified")
        return web.Response(status=304, headers={"ETag": etag})
    await _audit(request, claims, "entries.get", key, "ok")
    return web.Response(body=raw, headers={"ETag": etag, "Content-Type": "application/json; charset=utf-8"})


@reader
async def get_divergences(request: web.Request, claims: tokens.Claims) -> web.Response:
    rt = request.app[RUNTIME]
    now = clock.now_ms()
    versions, fresh = await rt.worker.run(lambda s: (s.versions_by_key(), freshness.by_key(s, now_ms=now)))
    report = divergence.divergences(versions)
    for d in report:  # when each listing was last modified, verified and confirmed (issue 15)
        f = fresh.get(d["key"]) or {}
        d.update({k: f.get(k) for k in ("last_modified", "last_verified", "last_confirmed")})
        d["modified_by_origin"] = {
            v["origin"]: freshness.iso(v["hlc"]) for v in versions.get(d["key"], []) if v.get("op") == "put"
        }
    await _audit(request, claims, "divergences", "*", "ok", f"{len(report)} keys")
    return web.json_response({"divergences": report})


@reader
async def get_networks(request: web.Request, claims: tokens.Claims) -> web.Response:
    rt = request.app[RUNTIME]
    result = divergence.networks_by_state(await rt.worker.run(Store.versions_by_key))
    await _audit(request, claims, "networks", "*", "ok")
    return web.json_response({"networks": result})


@reader
async def export(request: web.Request, claims: tokens.Claims) -> web.Response:
    rt = request.app[RUNTIME]
    from pocsync.directory import exports

    fmt = request.query.get("format", "json")
    now = clock.now_ms()
    rows = await rt.worker.run(lambda s: freshness.annotate(s, s.entries(), now_ms=now))
    if "key" in request.query:
        rows = [r for r in rows if r["key"] == request.query["key"]]
    if fmt == "json":
        body, ctype, ext = exports.to_json(rows), "application/json", "json"
    elif fmt == "csv":
        body, ctype, ext = exports.to_csv(rows).encode(), "text/csv; charset=utf-8", "csv"
    elif fmt == "vcard":
        body, ctype, ext = exports.to_vcard(rows).encode(), "text/vcard; charset=utf-8", "vcf"
    else:
        return problem(400, "bad request", "format must be json, csv or vcard", reason="bad_request")
    await _audit(request, claims, f"export.{fmt}", "*", "ok", f"{len(rows)} entries")
    return web.Response(
        body=body,
        headers={"Content-Type": ctype, "Content-Disposition": f'attachment; filename="pocsync-directory.{ext}"'},
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
    app[READ_LIMITER] = RateLimiter(app[RUNTIME].cfg.api.token_requests_per_second)  # sync.toml [api]
    app[ISSUE_LIMITER] = RateLimiter(ISSUES_PER_SECOND)
    app.router.add_get("/v1/entries", list_entries)
    app.router.add_get("/v1/entries/{state}/{kind}", get_entry)
    app.router.add_get("/v1/divergences", get_divergences)
    app.router.add_get("/v1/networks", get_networks)
    app.router.add_get("/v1/export", export)
    app.router.add_post("/v1/token/renew", renew)
    app.router.add_post("/v1/session", session_start)
    app.router.add_get("/v1/session", session_status)
    app.router.add_delete("/v1/session", session_end)
    app.router.add_get("/v1/whoami", whoami)
