"""How the daemon serves HTTP: the request middleware (counts by route and status, sheds load beyond
``[api] max_pending_requests``, turns errors into problem details) and the listener's TLS context."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from pocsync.api.problems import problem
from pocsync.errors import ConfigError
from pocsync.folder.nodedir import NodeDir
from pocsync.live.runtime import Runtime

log = logging.getLogger("pocsync.node")


def request_middleware(rt: Runtime) -> Middleware:
    """Count requests by route and status; turn HTTP errors into problem details (RFC 9457)."""

    pending = 0  # requests being handled now; beyond [api] max_pending_requests: 503 (not /v1/node)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal pending
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        if pending >= rt.cfg.api.max_pending_requests and route != "/v1/node":
            rt.counters[f"api:{route}:503"] += 1
            return problem(
                503,
                "busy",
                f"this node is handling {pending} requests; try again shortly",
                reason="too_many_pending",
                headers={"Retry-After": "1"},
            )
        pending += 1
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            rt.counters[f"api:{route}:{exc.status}"] += 1
            if exc.status >= 400:
                return problem(exc.status, exc.reason, reason=exc.reason.lower().replace(" ", "_"))
            raise
        except asyncio.CancelledError:
            raise
        except ConnectionResetError:  # the client left mid-request (e.g. mid-body): not this node's fault
            rt.counters[f"api:{route}:connection_lost"] += 1
            return problem(400, "connection lost", reason="connection_lost")
        except Exception:
            log.exception("error handling %s %s", request.method, route)
            rt.counters[f"api:{route}:500"] += 1
            return problem(500, "internal error", "the node logged the details", reason="internal_error")
        finally:
            pending -= 1
        rt.counters[f"api:{route}:{resp.status}"] += 1
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    return middleware


def ssl_context(nd: NodeDir) -> ssl.SSLContext | None:
    api = nd.config.api
    if api.tls_cert and api.tls_key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(nd.config.resolve(api.tls_cert), nd.config.resolve(api.tls_key))
        return ctx
    host, _ = api.host_port
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback and not api.behind_tls_proxy:
        raise ConfigError(
            f"[api] listen {api.listen} is off loopback without TLS: set tls_cert and tls_key,"
            " or behind_tls_proxy = true when a TLS proxy sits in front"
        )
    return None
