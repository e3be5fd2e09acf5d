"""Peer sync endpoints (PROTOCOL.md §13.2): signed requests in, sealed batches out.

* ``GET /v1/node`` — public: this node's id and manifest version (to address signed requests).
* ``GET /v1/manifest`` and ``GET /v1/manifest/{n}`` — public: manifest envelopes (public keys only).
* ``GET /v1/peer/heads`` — signed request: the node's signed head vector.
* ``GET /v1/peer/changesets?origin=O&after=S&limit=N`` — signed: a sealed batch of O's
  change-sets after seq S (any origin: a node relays others' change-sets verbatim).
* ``GET /v1/peer/proofs`` — signed: sealed equivocation proofs.
* ``POST /v1/peer/poke`` — signed: "I have something new; pull from me".

Requests are rate-limited per requesting node (429) and batches capped by count and bytes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from pocsync.api.problems import problem
from pocsync.core import heads as headsmod
from pocsync.core import jsonc
from pocsync.core.peerauth import PeerRequest, verify_request
from pocsync.errors import PocsyncError, ProtocolError
from pocsync.live.runtime import RUNTIME, Runtime, now_ms
from pocsync.store import Store


@dataclass
class Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_second: int) -> None:
        self.rate = float(per_second)
        self.burst = float(per_second * 2)
        self.buckets: dict[str, Bucket] = {}

    MAX_KEYS = 10_000  # keys are token jtis too, which a holder mints at will (one per sign-in)

    def _forget(self, now: float) -> None:
        """Forget full buckets (a forgotten key comes back full: no answer changes); under a flood, the oldest."""
        self.buckets = {k: b for k, b in self.buckets.items() if b.tokens + (now - b.at) * self.rate < self.burst}
        if len(self.buckets) >= self.MAX_KEYS:
            keep = sorted(self.buckets.items(), key=lambda kv: kv[1].at)[self.MAX_KEYS // 10 :]
            self.buckets = dict(keep)

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        if key not in self.buckets and len(self.buckets) >= self.MAX_KEYS:
            self._forget(now)
        b = self.buckets.setdefault(key, Bucket(self.burst, now))
        b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True


LIMITER = web.AppKey("peer_limiter", RateLimiter)


async def _authenticate(request: web.Request) -> PeerRequest | web.Response:
    rt = request.app[RUNTIME]
    body = await request.read() if request.can_read_body else b""
    try:
        m = await rt.manifest()
        peer = verify_request(
            request.headers.get("Authorization"),
            manifest=m,
            me=rt.me,
            method=request.method,
            path=request.path_qs,
            body=body,
            now_ms=now_ms(),
            max_age_ms=rt.cfg.sync.request_max_age_seconds * 1000,
        )
    except PocsyncError as exc:
        rt.counters[f"peer_requests_rejected:{exc.reason}"] += 1
        return problem(
            401,
            "peer request not authenticated",
            exc.message,
            reason=exc.reason,
            headers={"WWW-Authenticate": "Pocsync"},
        )
    if not request.app[LIMITER].allow(peer.node):
        rt.counters["peer_requests_rejected:rate_limited"] += 1
        return problem(
            429,
            "too many requests",
            f"{peer.node} exceeds its request rate",
            reason="rate_limited",
            headers={"Retry-After": "1"},
        )
    rt.counters["peer_requests_ok"] += 1
    rt.contact(peer.node, via="http")
    return peer


PeerHandler = Callable[[web.Request, PeerRequest], Awaitable[web.StreamResponse]]


def signed(handler: PeerHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Decorate a handler ``(request, peer)``: it runs only for a signed request of a member node within its
    rate (401 or 429 problem otherwise, see :func:`_authenticate`)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        peer = await _authenticate(request)
        if isinstance(peer, web.Response):
            return peer
        return await handler(request, peer)

    return guarded


async def node_info(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    m = await rt.manifest()
    return web.json_response({"node": rt.me, "manifest": m.version, "protocol": "pocsync/v1"})


async def manifest_latest(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    m = await rt.manifest()
    return web.Response(body=m.to_bytes(), content_type="application/json")


async def manifest_version(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        n = int(request.match_info["n"])
    except ValueError:
        return problem(400, "bad manifest version", "the version must be an integer", reason="bad_request")
    data = await rt.worker.run(lambda s: s.manifest_bytes(n)) if 1 <= n <= 2**53 - 1 else None
    if data is None:
        return problem(404, "no such manifest version", f"this node holds no manifest v{n}", reason="not_found")
    return web.Response(body=data, content_type="application/json")


@signed
async def heads(request: web.Request, peer: PeerRequest) -> web.Response:
    rt = request.app[RUNTIME]
    return web.Response(body=await rt.head_vector(), content_type="application/json")


@signed
async def changesets(request: web.Request, peer: PeerRequest) -> web.Response:
    rt = request.app[RUNTIME]
    q = request.query
    try:
        origin = q["origin"]
        after = int(q.get("after", "0"))
        limit = int(q.get("limit", str(rt.cfg.sync.max_batch)))
        # seqs are JSON-safe integers (PROTOCOL §2): bound them before SQLite or the JSON writer sees them
        if not (0 <= after <= jsonc.MAX_SAFE_INT and 1 <= limit <= jsonc.MAX_SAFE_INT) or len(origin) > 64:
            raise ValueError
        limit = min(limit, rt.cfg.sync.max_batch)
    except (KeyError, ValueError):
        return problem(
            400, "bad request", f"need origin, 0 ≤ after ≤ {jsonc.MAX_SAFE_INT} and limit ≥ 1", reason="bad_request"
        )
    envs, more = await rt.worker.run(
        Store.batch_after, origin, after, limit=limit, max_bytes=rt.cfg.sync.max_batch_bytes
    )
    m = await rt.manifest()
    plaintext = jsonc.dumps({"origin": origin, "after": after, "changesets": [e.decode() for e in envs], "more": more})
    rt.counters["changesets_served"] += len(envs)
    resp = web.Response(
        body=rt.seal_for(m, plaintext, context=f"http:{request.path}", to=[peer.node]), content_type="application/json"
    )
    return _compressed(resp)


COMPRESS_FROM = 1024  # bytes: larger peer answers are sent with HTTP content coding when the peer accepts it


def _compressed(resp: web.Response) -> web.Response:
    """HTTP content coding (gzip/deflate, as the client's Accept-Encoding allows; issue 13): a sealed batch
    is base64 text, about a third larger than its ciphertext, which gzip takes back on the wire.  The
    sealed bytes themselves are unchanged (PROTOCOL.md §13.2); the receiver caps what it decompresses."""
    if resp.body is not None and len(resp.body) >= COMPRESS_FROM:  # type: ignore[arg-type]
        resp.enable_compression()
    return resp


@signed
async def proofs(request: web.Request, peer: PeerRequest) -> web.Response:
    rt = request.app[RUNTIME]
    m = await rt.manifest()
    items = await rt.worker.run(Store.proof_envelopes)
    return _compressed(
        web.Response(
            body=rt.seal_for(m, jsonc.dumps({"proofs": items}), context=f"http:{request.path}", to=[peer.node]),
            content_type="application/json",
        )
    )


@signed
async def poke(request: web.Request, peer: PeerRequest) -> web.Response:
    rt = request.app[RUNTIME]
    body = await request.read()
    if not body:  # a poke without a head vector (before ADR 11): just pull
        rt.pull_now.set()
        return web.json_response({"ok": True, "from": peer.node})
    try:
        hv = headsmod.verify(body, await rt.manifest())
        if hv.node != peer.node:
            raise ProtocolError(f"poke by {peer.node} carries the head vector of {hv.node}", reason="wrong_head_node")
    except PocsyncError as exc:
        rt.counters[f"peer_requests_rejected:{exc.reason}"] += 1
        return problem(400, "bad head vector", exc.message, reason=exc.reason)
    pulling = await rt.on_head_vector(hv, via="poke")
    return web.json_response({"ok": True, "from": peer.node, "pull": pulling})


@signed
async def stats(request: web.Request, peer: PeerRequest) -> web.Response:
    """Sync counters and peer state for member nodes (no entry content)."""
    rt = request.app[RUNTIME]
    summary = await rt.worker.run(Store.summary)
    return web.json_response(
        {
            "node": rt.me,
            "counters": dict(rt.counters),
            "mqtt_connected": rt.mqtt_connected,
            "heads": {o: {"seq": s, "id": i} for o, (s, i) in summary["heads"].items()},
            "digest": summary["digest"],
            "peers": {
                u: {
                    "node": p.node,
                    "last_pull_ok": p.last_pull_ok,
                    "last_error": p.last_error,
                    "pulls": p.pulls,
                    "received": p.received,
                    "bytes_received": p.bytes_received,
                }
                for u, p in rt.peers.items()
            },
        }
    )


def add_routes(app: web.Application, rt: Runtime) -> None:
    app[RUNTIME] = rt
    app[LIMITER] = RateLimiter(rt.cfg.sync.peer_requests_per_second)
    app.router.add_get("/v1/node", node_info)
    app.router.add_get("/v1/manifest", manifest_latest)
    app.router.add_get("/v1/manifest/{n}", manifest_version)
    app.router.add_get("/v1/peer/heads", heads)
    app.router.add_get("/v1/peer/changesets", changesets)
    app.router.add_get("/v1/peer/proofs", proofs)
    app.router.add_post("/v1/peer/poke", poke)
    app.router.add_get("/v1/peer/stats", stats)
