"""``pocsync run``: the node daemon as an aiohttp application.

Long-lived work runs as named tasks started and cancelled by cleanup contexts:

* ``pocsync-pull`` — HTTP pull from every peer on start, when woken (gap, head mismatch,
  reconnect, poke) and every ``pull_interval_seconds``;
* ``pocsync-publisher`` — finds this node's change-sets not yet published (committed by the daemon
  or by the CLI in another process) and publishes them sealed over MQTT, or pokes peers over HTTP
  when there is no broker; announces the head vector;
* ``pocsync-mqtt`` — the MQTT link (only when a broker is configured).

SIGTERM and SIGINT stop the server, cancel the tasks and close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from pocsync import logs, tokens
from pocsync.api import auth
from pocsync.api import directory as directory_api
from pocsync.api import ops as ops_api
from pocsync.api import web as web_pages
from pocsync.api import peer as peer_api
from pocsync.api.problems import problem
from pocsync.errors import ConfigError, PocsyncError
from pocsync.nodedir import NodeDir
from pocsync.node import sdnotify
from pocsync.node.runtime import Runtime
from pocsync.node.worker import StoreWorker
from pocsync.store import Store
from pocsync.transport.http import PeerClient
from pocsync.transport.mqtt import MqttLink

log = logging.getLogger("pocsync.node")
RT = peer_api.RUNTIME
MQTT = web.AppKey("mqtt", MqttLink)
CLIENT = web.AppKey("peer_client", PeerClient)


async def peer_urls(rt: Runtime) -> list[str]:
    """Configured peers plus the HTTP endpoints of the manifest's other members."""
    m = await rt.manifest()
    urls = list(rt.cfg.sync.peers)
    for nid, node in sorted(m.members().items() if rt.cfg.sync.discover_peers else ()):
        url = node.endpoints.get("http")
        if nid != rt.me and url and url not in urls:
            urls.append(url)
    own = rt.cfg.api.public_url
    return [u for u in urls if u.rstrip("/") != own.rstrip("/")]


async def pull_loop(app: web.Application) -> None:
    rt, client = app[RT], app[CLIENT]
    while True:
        rt.pull_now.clear()
        for url in await peer_urls(rt):
            try:
                await client.pull(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — one peer's failure must not stop the others
                log.info("pull from %s failed: %s", url, exc)
        rt.counters["pull_rounds"] += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rt.pull_now.wait(), timeout=rt.cfg.sync.pull_interval_seconds)


async def publisher_loop(app: web.Application) -> None:
    rt, client = app[RT], app[CLIENT]
    mqtt = app.get(MQTT)
    poll = rt.cfg.sync.publish_poll_ms / 1000
    last_head: str | None = None
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rt.publish_now.wait(), timeout=poll)
        rt.publish_now.clear()
        try:
            pending = await rt.worker.run(Store.unpublished)
            if pending and mqtt is not None and rt.mqtt_connected:
                done = []
                for seq, env in pending:
                    await mqtt.publish_changeset(env)
                    done.append(seq)
                await rt.worker.run(Store.mark_published, done)
            elif pending and mqtt is None:
                poked = 0
                for url in await peer_urls(rt):
                    st = rt.peers.get(url)
                    try:
                        if st is None or st.node is None:
                            node, _ = await client.identify(url)
                        else:
                            node = st.node
                        await client.poke(url, node)
                        poked += 1
                    except (PocsyncError, aiohttp.ClientError, OSError, asyncio.TimeoutError):
                        continue
                await rt.worker.run(Store.mark_published, [s for s, _ in pending])
                rt.counters["pokes_sent"] += poked
            if mqtt is not None and rt.mqtt_connected:
                digest = (await rt.worker.run(Store.summary))["digest"] + str(len(pending))
                if pending or digest != last_head:
                    await mqtt.publish_head()
                    last_head = digest
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 — retried on the next round
            log.info("publish failed: %s", exc)
            rt.counters["publish_errors"] += 1


async def supervise(app: web.Application, name: str, factory) -> None:  # noqa: ANN001
    """Run ``factory(app)`` forever: an unexpected crash is logged, counted and restarted after a pause."""
    rt = app[RT]
    while True:
        try:
            await factory(app)
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 — a supervisor's job
            log.exception("task %s crashed; restarting in 1 s", name)
            rt.counters[f"task_restarts:{name}"] += 1
            await asyncio.sleep(1)


async def watchdog_loop(app: web.Application) -> None:
    """Tell systemd we are ready, then keep its watchdog fed while the store answers."""
    rt = app[RT]
    sdnotify.notify("READY=1")
    interval = sdnotify.watchdog_interval()
    while interval:
        await asyncio.wait_for(rt.worker.run(Store.digest), timeout=interval)  # the store still answers
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def task_context(name: str, factory) -> object:  # noqa: ANN001
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(supervise(app, name, factory), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    ctx.__name__ = name
    return ctx


def request_middleware(rt: Runtime):  # noqa: ANN201
    """Count requests by route and status; turn HTTP errors into problem details (RFC 9457)."""

    @web.middleware
    async def middleware(request: web.Request, handler):  # noqa: ANN001, ANN202
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            rt.counters[f"api:{route}:{exc.status}"] += 1
            if exc.status >= 400:
                return problem(exc.status, exc.reason, reason=exc.reason.lower().replace(" ", "_"))
            raise
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 — never a bare traceback to the client
            log.exception("error handling %s %s", request.method, route)
            rt.counters[f"api:{route}:500"] += 1
            return problem(500, "internal error", "the node logged the details", reason="internal_error")
        rt.counters[f"api:{route}:{resp.status}"] += 1
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    return middleware


def build_app(nd: NodeDir) -> web.Application:
    worker = StoreWorker(nd.config.store_path, limits=nd.config.limits.core())
    rt = Runtime(nd=nd, worker=worker)
    app = web.Application(client_max_size=1 << 20, middlewares=[request_middleware(rt)])
    peer_api.add_routes(app, rt)
    ops_api.add_routes(app)
    directory_api.add_routes(app)
    web_pages.add_routes(app)
    app[auth.CACHE] = tokens.TokenCache()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await worker.start()
        await rt.manifest()
        yield
        await worker.close()

    async def client_ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=nd.config.sync.http_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=nd.peer_ssl())) as session:
            app[CLIENT] = PeerClient(rt, session)
            yield

    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(client_ctx)
    if nd.config.mqtt.url:
        app[MQTT] = MqttLink(rt)
        app.cleanup_ctx.append(task_context("pocsync-mqtt", lambda a: a[MQTT].run()))
    app.cleanup_ctx.append(task_context("pocsync-pull", pull_loop))
    app.cleanup_ctx.append(task_context("pocsync-publisher", publisher_loop))
    app.cleanup_ctx.append(task_context("pocsync-watchdog", watchdog_loop))
    app.cleanup_ctx.append(task_context("pocsync-sampler", ops_api.sampler_loop))
    return app


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
        raise ConfigError(f"[api] listen {api.listen} is off loopback without TLS: set tls_cert and tls_key,"
                          " or behind_tls_proxy = true when a TLS proxy sits in front")
    return None


def run(nd: NodeDir) -> None:
    with nd.store() as store:  # fail early and clearly: store present, manifest installed
        store.require_manifest()
    tls = ssl_context(nd)
    host, port = nd.config.api.host_port
    logs.setup(nd.config.log.format, nd.config.log.level)
    log.info("node %s listening on %s:%d (%s)", nd.node_id, host, port, "TLS" if tls else "plain HTTP")
    web.run_app(build_app(nd), host=host, port=port, ssl_context=tls, print=None, handle_signals=True,
                shutdown_timeout=5)
