"""The PoC directory API (issue 4; docs/SECURITY.md, docs/ARCHITECTURE.md §2).  Only PoC tokens (scope ``directory``) read entries.

* ``GET /v1/entries`` — filters ``state``, ``kind``, ``network``, ``q`` (full-text search, matches best first:
  pocsync/store/search.py); ``page``/``per_page``; ETag from the view digest and the query, ``If-None-Match`` → 304.
* ``GET /v1/entries/{state}/{kind}`` — the entry with provenance: winning origin, change-set id,
  hlc, author, and every other origin's latest version.
* ``GET /v1/divergences`` — keys whose origins' versions differ, field by field.
* ``GET /v1/networks`` — which regional directories list each State's PoCs.
* ``GET /v1/export?format=json|csv|vcard`` — the whole directory.

Renewing a token, signing in and ``whoami`` are pocsync/api/session.py (its routes are added with these).
Every read is written to the audit log (pocsync/api/audit.py).  A per-token rate limit answers 429.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from pocsync import clock, tokens
from pocsync.api import session
from pocsync.api.audit import audit
from pocsync.api.auth import requires
from pocsync.api.peer import RateLimiter
from pocsync.api.problems import problem
from pocsync.api.session import ISSUE_LIMITER as ISSUE_LIMITER
from pocsync.api.session import ISSUES_PER_SECOND as ISSUES_PER_SECOND
from pocsync.api.session import RENEW_TTL_S as RENEW_TTL_S
from pocsync.api.session import issue_limit as issue_limit
from pocsync.api.session import renew as renew
from pocsync.api.session import session_end as session_end
from pocsync.api.session import session_start as session_start
from pocsync.api.session import session_status as session_status
from pocsync.api.session import whoami as whoami
from pocsync.directory import divergence, freshness
from pocsync.live import readcache
from pocsync.live.runtime import RUNTIME
from pocsync.store import Store, search

_audit = audit  # every read is audited; api/history.py and api/templates.py take it from here

READ_LIMITER = web.AppKey("read_limiter", RateLimiter)
MAX_PER_PAGE = 500


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
    fresh = await cache.freshness(clock.now_ms())  # overdue moves with time: judged once per second
    overdue = cache.overdue_of(fresh)  # becoming overdue (or overdue on more counts) changes the answer
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


def add_routes(app: web.Application) -> None:
    app[READ_LIMITER] = RateLimiter(app[RUNTIME].cfg.api.token_requests_per_second)  # sync.toml [api]
    app.router.add_get("/v1/entries", list_entries)
    app.router.add_get("/v1/entries/{state}/{kind}", get_entry)
    app.router.add_get("/v1/divergences", get_divergences)
    app.router.add_get("/v1/networks", get_networks)
    app.router.add_get("/v1/export", export)
    session.add_routes(app)  # POST /v1/token/renew, /v1/session, GET /v1/whoami
