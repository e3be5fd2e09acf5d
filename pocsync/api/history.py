"""A State's audit trail and the crisis snapshot over HTTP (issue 16 parts 2 and 3, PROTOCOL.md §17).

* ``GET /v1/history/{state}`` — every op that touched the State's keys, from any origin, applied or
  refused, with a field-by-field diff; the State's current entries and records.  Only a PoC token
  whose subject is an entry of that State (``DEU/technical`` reads ``DEU``); any other gets 403.
* ``GET /v1/history/{state}/bundle`` — the same with the signed change-sets and the manifest chain,
  verifiable without this node (``tests/independent/bundle_verify.py``).
* ``POST /v1/snapshot`` — a signed, age-encrypted snapshot of the merged view for any signed-in PoC:
  body ``{"passphrase": "…"}`` (at least 20 characters) or ``{"recipients": ["age1…", …]}``.

Every request is audited.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from pocsync import tokens
from pocsync.api.directory import _audit, reader
from pocsync.api.peer import RateLimiter
from pocsync.api.problems import problem
from pocsync.core import jsonc, model
from pocsync.directory import history, snapshot
from pocsync.errors import PocsyncError
from pocsync.live.runtime import RUNTIME

SNAPSHOT_LIMITER = web.AppKey("snapshot_limiter", RateLimiter)
MAX_SNAPSHOT_REQUEST = 16 * 1024


async def _own_state(request: web.Request, claims: tokens.Claims) -> str | web.Response:
    """The State of the request's path, when it is the token subject's own (403 problem otherwise)."""
    state = request.match_info["state"].upper()
    if not model.STATE_RE.match(state):
        return problem(400, "bad request", "state must be an ISO 3166-1 alpha-3 code", reason="bad_request")
    own = claims.subject.split("/", 1)[0]
    if own != state:
        await _audit(request, claims, "history.get", state, "forbidden")
        return problem(403, "forbidden", f"a token of {own} reads the history of {own} only", reason="not_your_state")
    return state


@reader
async def get_history(request: web.Request, claims: tokens.Claims) -> web.Response:
    state = await _own_state(request, claims)
    if isinstance(state, web.Response):
        return state
    body = await request.app[RUNTIME].worker.run(history.state_history, state)
    await _audit(request, claims, "history.get", state, "ok", f"{len(body['ops'])} ops, {body['refused']} refused")
    return web.json_response(body)


@reader
async def get_bundle(request: web.Request, claims: tokens.Claims) -> web.Response:
    state = await _own_state(request, claims)
    if isinstance(state, web.Response):
        return state
    body = await request.app[RUNTIME].worker.run(history.state_bundle, state)
    await _audit(request, claims, "history.bundle", state, "ok", f"{len(body['changesets'])} change-sets")
    return web.Response(
        body=json.dumps(body, sort_keys=True, ensure_ascii=False).encode(),
        headers={
            "Content-Type": "application/json",
            "Content-Disposition": f'attachment; filename="pocsync-history-{state}.json"',
        },
    )


@reader
async def post_snapshot(request: web.Request, claims: tokens.Claims) -> web.Response:
    rt = request.app[RUNTIME]
    raw = await request.content.read(MAX_SNAPSHOT_REQUEST + 1)
    try:
        if len(raw) > MAX_SNAPSHOT_REQUEST:
            raise PocsyncError("request too large", reason="oversize")
        data = jsonc.loads(raw)
        if not isinstance(data, dict) or set(data) - {"passphrase", "recipients"} or len(data) != 1:
            raise PocsyncError('send {"passphrase": "…"} or {"recipients": ["age1…"]}', reason="bad_request")
        passphrase = data.get("passphrase")
        recipients = data.get("recipients")
        if passphrase is not None:
            if not isinstance(passphrase, str) or len(passphrase) < snapshot.MIN_PASSPHRASE_CHARS:
                raise PocsyncError(
                    f"the passphrase must have at least {snapshot.MIN_PASSPHRASE_CHARS} characters",
                    reason="weak_passphrase",
                )
            if len(passphrase) > 1024:
                raise PocsyncError("the passphrase is longer than 1024 characters", reason="bad_request")
        elif not (
            isinstance(recipients, list)
            and 1 <= len(recipients) <= 20
            and all(isinstance(r, str) and len(r) <= 200 for r in recipients)
        ):
            raise PocsyncError("recipients must be a list of 1 to 20 age public keys", reason="bad_request")
        if not request.app[SNAPSHOT_LIMITER].allow(claims.subject):  # a passphrase costs seconds of CPU (scrypt)
            return problem(
                429,
                "too many requests",
                "one snapshot a minute per Point of Contact",
                reason="rate_limited",
                headers={"Retry-After": "60"},
            )
        container = await rt.worker.run(lambda s: snapshot.build(s, rt.nd))
        pw = passphrase.encode() if passphrase else None  # scrypt takes seconds: off the event loop
        blob = await asyncio.get_running_loop().run_in_executor(
            None, lambda: snapshot.encrypt(container, passphrase=pw, recipients=recipients or [])
        )
    except PocsyncError as exc:
        return problem(400, "bad request", exc.message, reason=exc.reason)
    await _audit(
        request,
        claims,
        "snapshot.download",
        "*",
        "ok",
        "passphrase" if passphrase else f"{len(recipients or [])} recipient(s)",
    )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return web.Response(
        body=blob,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="pocsync-snapshot-{rt.me}-{stamp}.age"',
        },
    )


def add_routes(app: web.Application) -> None:
    app[SNAPSHOT_LIMITER] = RateLimiter(1)
    app[SNAPSHOT_LIMITER].rate = 1 / 60  # one a minute, a burst of two
    app.router.add_get("/v1/history/{state}", get_history)
    app.router.add_get("/v1/history/{state}/bundle", get_bundle)
    app.router.add_post("/v1/snapshot", post_snapshot)
