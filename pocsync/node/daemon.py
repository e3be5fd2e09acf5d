"""``pocsync run``: the node daemon as an aiohttp application.

Long-lived work runs as named tasks started and cancelled by cleanup contexts:

* ``pocsync-pull`` — HTTP pull from every peer on start, when woken (gap, head mismatch,
  reconnect, poke) and every ``pull_interval_seconds``;
* ``pocsync-publisher`` — finds this node's change-sets not yet published (committed by the daemon
  or by the CLI in another process) and publishes them sealed over MQTT, or pokes peers over HTTP
  when there is no broker; announces the head vector;
* ``pocsync-mqtt`` — the MQTT link (only when a broker is configured);
* ``pocsync-sources`` — re-imports each ``[[sources]]`` directory on its interval.

SIGTERM and SIGINT stop the server, cancel the tasks and close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from pocsync import tokens
from pocsync.api import auth
from pocsync.api import checks as checks_api
from pocsync.api import directory as directory_api
from pocsync.api import held as held_api
from pocsync.api import history as history_api
from pocsync.api import ops as ops_api
from pocsync.api import peer as peer_api
from pocsync.api import templates as templates_api
from pocsync.api import web as web_pages
from pocsync.errors import PocsyncError
from pocsync.folder.nodedir import NodeDir
from pocsync.live import readcache
from pocsync.live.runtime import RUNTIME, Runtime, event
from pocsync.live.worker import StoreWorker
from pocsync.node import sdnotify
from pocsync.node.check_loop import check_loop
from pocsync.node.commit_fifo import commit_fifo_ctx
from pocsync.node.held_loop import held_loop
from pocsync.node.pulling import peer_urls, pull_loop
from pocsync.node.serving import request_middleware as request_middleware
from pocsync.node.serving import ssl_context as ssl_context
from pocsync.node.source_loop import source_loop
from pocsync.ops import logs
from pocsync.store import Store
from pocsync.transport.http import CLIENT, PeerClient
from pocsync.transport.mqtt import MqttLink

log = logging.getLogger("pocsync.node")
RT = RUNTIME
MQTT = web.AppKey("mqtt", MqttLink)
#: a long-lived task of the daemon, run (and restarted) by :func:`supervise`
TaskFactory = Callable[[web.Application], Awaitable[None]]


POKE_MIN_INTERVAL = 0.5  # seconds between two announcements of a changing digest
COMMIT_WATCH_S = 0.05  # the data_version safety net's period, behind the commit FIFO (ADR 41)
PUBLISH_CHUNK = 500  # own unpublished change-sets read per publish round
POKE_TIMEOUT = 5.0


async def announce_by_poke(rt: Runtime, client: PeerClient) -> int:
    """Poke every peer with this node's signed head vector (no broker); returns how many answered."""
    hv = await rt.head_vector()

    async def one(url: str) -> bool:
        st = rt.peers.get(url)
        node = st.node if st is not None and st.node else rt.url_nodes.get(url)
        try:
            if node is None:
                node, _ = await client.identify(url)
            await client.poke(url, node, hv, timeout=POKE_TIMEOUT)
            return True
        except PocsyncError as exc:  # the network's errors arrive wrapped (transport.http.FetchError)
            if node is not None:
                rt.contact_failed(node, f"poke: {type(exc).__name__}: {exc}")
            return False

    results = await asyncio.gather(*(one(u) for u in await peer_urls(rt)))
    return sum(results)


async def _wait_for_commit(rt: Runtime, watch: readcache.StoreWatch, seen: int, poll: float) -> int:
    """Wait until woken, a commit, or ``poll`` seconds; returns the store version now.

    Another process's commit wakes ``rt.publish_now`` at once through the commit FIFO (ADR 41,
    node/commit_fifo.py); what the daemon signs itself sets it in process.  The store's data_version,
    checked every COMMIT_WATCH_S, is the safety net for a writer that cannot notify (an older CLI, a
    pipe that could not be made); publish_poll_ms bounds the wait whatever happens (ADR 22)."""
    deadline = time.monotonic() + poll
    while not rt.publish_now.is_set() and watch.version() == seen:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rt.publish_now.wait(), timeout=min(COMMIT_WATCH_S, left))
    rt.publish_now.clear()
    return watch.version()


async def _publish_over_mqtt(rt: Runtime, mqtt: MqttLink, pending: list[tuple[int, bytes]]) -> None:
    """Publish own change-sets in seq order and mark those published (a failure leaves them all for the next round)."""
    done = []
    for seq, env in pending:
        await mqtt.publish_changeset(env)
        done.append(seq)
        event(
            "changeset_signed",
            "own change-set %s seq %d signed and published via mqtt",
            rt.me,
            seq,
            origin=rt.me,
            seq=seq,
            via="mqtt",
        )
    await rt.worker.run(Store.mark_published, done)


@dataclass
class _Announced:
    """What the publisher last announced (heads and digest) and when; when a deferred announcement is due."""

    state: str | None = None
    at: float = 0.0
    due: float | None = None  # a changed digest without own change-sets waits for POKE_MIN_INTERVAL (ADR 43)

    def may(self) -> bool:
        return time.monotonic() - self.at >= POKE_MIN_INTERVAL

    def done(self, state: str) -> None:
        self.state, self.at, self.due = state, time.monotonic(), None

    def defer(self) -> None:
        # announced once the interval has passed — but an own change-set committed meanwhile (woken through
        # the commit FIFO) is announced at once, not after this wait (issue 13)
        self.due = self.at + POKE_MIN_INTERVAL


async def _announce_by_poke(
    rt: Runtime, client: PeerClient, ann: _Announced, state: str, pending: list[tuple[int, bytes]]
) -> None:
    """Without a broker: poke at once for own change-sets, at most once per interval for a changed digest."""
    if not pending and state == ann.state:
        return
    if not pending and not ann.may():
        ann.defer()
        return
    poked = await announce_by_poke(rt, client)
    ann.done(state)
    rt.counters["pokes_sent"] += poked
    if pending:
        await rt.worker.run(Store.mark_published, [s for s, _ in pending])
        for seq, _ in pending:
            event(
                "changeset_signed",
                "own change-set %s seq %d signed and announced to %d peer(s) by poke",
                rt.me,
                seq,
                poked,
                origin=rt.me,
                seq=seq,
                via="poke",
                peers=poked,
            )


async def _announce_head_over_mqtt(mqtt: MqttLink, ann: _Announced, state: str) -> None:
    """With a broker the change-sets are already out: the retained head vector (anti-entropy, health) is
    published at most once per POKE_MIN_INTERVAL, so a busy federation does not verify and compare every
    node's head after every change-set (issue 13, ADR 43)."""
    if state == ann.state:
        return
    if not ann.may():
        ann.defer()
        return
    await mqtt.publish_head()
    ann.done(state)


async def publisher_loop(app: web.Application) -> None:
    """Publish this node's new change-sets and announce its head vector whenever heads or digest change:
    over MQTT (retained head topic) with a broker, by pokes carrying the head vector without one."""
    rt, client = app[RT], app[CLIENT]
    mqtt = app.get(MQTT)
    poll = rt.cfg.sync.publish_poll_ms / 1000
    watch = readcache.StoreWatch(rt.cfg.store_path)
    seen = watch.version()
    ann = _Announced()
    while True:
        wait = poll if ann.due is None else min(poll, max(0.0, ann.due - time.monotonic()))
        seen = await _wait_for_commit(rt, watch, seen, wait)
        rt.counters["publish_rounds"] += 1
        try:
            pending = await rt.worker.run(Store.unpublished, PUBLISH_CHUNK)
            more = len(pending) >= PUBLISH_CHUNK and (mqtt is None or rt.mqtt_connected)
            if pending and mqtt is not None and rt.mqtt_connected:  # the change-sets first, then heads/digest
                await _publish_over_mqtt(rt, mqtt, pending)
            summary = await rt.summary()
            state = summary["digest"] + repr(sorted(summary["heads"].items()))
            if mqtt is None:
                await _announce_by_poke(rt, client, ann, state, pending)
            elif rt.mqtt_connected:
                await _announce_head_over_mqtt(mqtt, ann, state + str(len(pending)))
            if more:
                rt.publish_now.set()  # more to publish: the next round continues (bounded memory)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("publish failed: %s", exc, extra={"fields": {"event": "publish_failed", "error": str(exc)}})
            rt.counters["publish_errors"] += 1
            ann.due = None  # a failed announcement is retried after publish_poll_ms, not at once (no spin)


async def supervise(app: web.Application, name: str, factory: TaskFactory) -> None:
    """Run ``factory(app)`` forever: an unexpected crash is logged, counted and restarted after a pause."""
    rt = app[RT]
    while True:
        try:
            await factory(app)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
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


CANCEL_GRACE_S = 5.0  # how long a cancelled task may take to end before it is cancelled again


def task_context(name: str, factory: TaskFactory) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(supervise(app, name, factory), name=name)
        yield
        task.cancel()
        while not task.done():  # asyncio.wait_for on Python 3.11 may swallow a cancellation (CPython gh-86296)
            await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
            if not task.done():
                log.warning("task %s ignored its cancellation; cancelling it again", name)
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    ctx.__name__ = name
    return ctx


def build_app(nd: NodeDir) -> web.Application:
    worker = StoreWorker(nd.config.store_path, limits=nd.config.limits.core())
    rt = Runtime(nd=nd, worker=worker)
    app = web.Application(client_max_size=1 << 20, middlewares=[request_middleware(rt)])
    peer_api.add_routes(app, rt)
    ops_api.add_routes(app)
    directory_api.add_routes(app)
    templates_api.add_routes(app)
    history_api.add_routes(app)
    web_pages.add_routes(app)
    held_api.add_routes(app, nd.config.held.object_requests_per_minute)  # held contact changes (issue 16)
    checks_api.add_routes(app)
    app[auth.CACHE] = tokens.TokenCache()
    readcache.install(app, worker.run, nd.config.store_path)  # read cache and audit group commit (ADR 21)

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

    async def on_shutdown(app: web.Application) -> None:
        event("shutdown", "node %s shutting down", rt.me, node=rt.me)

    app.on_shutdown.append(on_shutdown)
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(readcache.read_path_ctx)
    app.cleanup_ctx.append(commit_fifo_ctx)  # another process's commit wakes the publisher at once (ADR 41)
    app.cleanup_ctx.append(client_ctx)
    if nd.config.mqtt.url:
        app[MQTT] = MqttLink(rt)
        app.cleanup_ctx.append(task_context("pocsync-mqtt", lambda a: a[MQTT].run()))
    app.cleanup_ctx.append(task_context("pocsync-pull", pull_loop))
    app.cleanup_ctx.append(task_context("pocsync-publisher", publisher_loop))
    app.cleanup_ctx.append(task_context("pocsync-watchdog", watchdog_loop))
    app.cleanup_ctx.append(task_context("pocsync-sampler", ops_api.sampler_loop))
    app.cleanup_ctx.append(task_context("pocsync-sources", source_loop))
    app.cleanup_ctx.append(task_context("pocsync-held", held_loop))
    app.cleanup_ctx.append(task_context("pocsync-checks", check_loop))
    return app


def run(nd: NodeDir) -> None:
    with nd.store() as store:  # fail early and clearly: store present, manifest installed
        store.require_manifest()
    tls = ssl_context(nd)
    host, port = nd.config.api.host_port
    logs.setup(nd.config.log.format, nd.config.log.level)
    _check_listen(host, port)  # before any task starts: a port in use is one clear error, and nothing ran
    event(
        "started",
        "node %s listening on %s:%d (%s)",
        nd.node_id,
        host,
        port,
        "TLS" if tls else "plain HTTP",
        node=nd.node_id,
    )
    web.run_app(
        build_app(nd), host=host, port=port, ssl_context=tls, print=None, handle_signals=True, shutdown_timeout=5
    )
    event("shutdown", "node %s stopped", nd.node_id, node=nd.node_id)


def _check_listen(host: str, port: int) -> None:
    """Bind (and release) every address ``host`` resolves to, as aiohttp will: a PocsyncError naming the address
    and the likely cause when one is taken, before any of the node's tasks starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise PocsyncError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", reason="cannot_listen") from None
    for family, _, _, _, addr in infos:
        try:
            socket.create_server(addr[:2], family=family).close()
        except OSError as exc:
            shown = f"[{addr[0]}]:{port}" if family == socket.AF_INET6 else f"{addr[0]}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise PocsyncError(
                    f"{shown} is already in use: is this node already running (another `pocsync run` of the same"
                    " folder), or another program on that port? ([api] listen in sync.toml)",
                    reason="address_in_use",
                ) from None
            raise PocsyncError(f"cannot listen on {shown}: {exc.strerror or exc}", reason="cannot_listen") from None
