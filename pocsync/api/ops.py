"""Operator endpoints: ``GET /v1/health`` (operator or PoC token) and ``GET /metrics``.

``/metrics`` takes a health-scope token as ``Authorization: Bearer`` — issue a long-lived one for
Prometheus with ``pocsync token issue --data DIR --operator prometheus --days 365`` and set it as
the scrape job's ``authorization.credentials_file`` (docs/OPERATIONS.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from pocsync.api import checks as checks_api
from pocsync.api.auth import requires
from pocsync.live.runtime import RUNTIME, Runtime
from pocsync.ops import health as healthmod
from pocsync.ops import metrics as metricsmod
from pocsync.store import Store, queries
from pocsync.tokens import Claims

HIST = web.AppKey("pull_histogram", metricsmod.PullHistogram)
SAMPLE_SECONDS = 10


def _drain(app: web.Application) -> None:
    rt = app[RUNTIME]
    while rt.pull_durations:
        app[HIST].observe(rt.pull_durations.pop())


@requires("health", "directory")
async def health(request: web.Request, who: Claims) -> web.Response:
    rt = request.app[RUNTIME]
    return web.json_response(await healthmod.collect(rt))


@requires("health")
async def metrics(request: web.Request, who: Claims) -> web.Response:
    rt = request.app[RUNTIME]
    _drain(request.app)
    body = metricsmod.render(await healthmod.collect(rt), rt.counters, request.app[HIST])
    body += metricsmod.render_checks(await checks_api.collect(rt))
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def _feed(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    q = [
        {"at": r["received_at"], "what": "quarantined", "origin": None, "seq": None, "reason": r["reason"]}
        for r in queries.recent_quarantine(store.conn, limit)
    ]
    r = [
        {
            "at": x["received_at"],
            "what": f"refused {x['op']} {x['key']}",
            "origin": x["origin"],
            "seq": x["seq"],
            "reason": x["reason"],
        }
        for x in queries.recent_refusals(store.conn, limit)
    ]
    return sorted(q + r, key=lambda x: x["at"] or "", reverse=True)[:limit]


@requires("health")
async def history(request: web.Request, who: Claims) -> web.Response:
    """Lag per origin over the last hour (sampled by the node) and the quarantine/refusal feed."""
    rt = request.app[RUNTIME]
    lag: dict[str, list[list[int]]] = {}
    for t, sample in rt.lag_history:
        for origin, v in sample.items():
            lag.setdefault(origin, []).append([round(t), v])
    return web.json_response({"lag": lag, "feed": await rt.worker.run(_feed)})


async def sample_lag(rt: Runtime) -> None:
    h = await healthmod.collect(rt)
    rt.lag_history.append((time.time(), {o: v["lag"] or 0 for o, v in h["origins"].items()}))
    cutoff = time.time() - 3600
    while rt.lag_history and rt.lag_history[0][0] < cutoff:
        rt.lag_history.popleft()


async def sampler_loop(app: web.Application) -> None:
    rt = app[RUNTIME]
    while True:
        await sample_lag(rt)
        await asyncio.sleep(SAMPLE_SECONDS)


def add_routes(app: web.Application) -> None:
    app[HIST] = metricsmod.PullHistogram()
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/health/history", history)
    app.router.add_get("/metrics", metrics)
