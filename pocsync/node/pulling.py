"""The daemon's pull task (``pocsync-pull``): full anti-entropy rounds, and fetches announced by pokes.

A full round pulls from every peer (identify, heads, then what is missing; ``PeerClient.pull``) on
start, when woken (``Runtime.pull_now``: a gap, a fork, a newer manifest, a reconnect) and every
``pull_interval_seconds``.  Between rounds, a poke whose head vector shows this node behind
(``Runtime.announced``, woken by ``Runtime.fetch_now``) is served at once by fetching from the poker
alone with the head vector it carried (``PeerClient.pull_announced``: one signed batch request, no
identify and no heads round trip; issue 13).  A fetch that fails falls back to a full round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from pocsync.core import heads as headsmod
from pocsync.core.heads import HeadVector
from pocsync.live.runtime import RUNTIME, Runtime
from pocsync.transport.http import CLIENT, PeerClient

log = logging.getLogger("pocsync.node")


async def peer_urls(rt: Runtime) -> list[str]:
    """Configured peers plus the HTTP endpoints of the manifest's other members."""
    m = await rt.manifest()
    urls = list(rt.cfg.sync.peers)
    for nid, node in sorted(m.members().items() if rt.cfg.sync.discover_peers else ()):
        url = node.endpoints.get("http")
        if url:
            rt.url_nodes[url] = nid
        if nid != rt.me and url and url not in urls:
            urls.append(url)
    own = rt.cfg.api.public_url
    return [u for u in urls if u.rstrip("/") != own.rstrip("/")]


def _failed(url: str, exc: Exception) -> None:
    log.info(
        "pull from %s failed: %s", url, exc, extra={"fields": {"event": "pull_failed", "peer": url, "error": str(exc)}}
    )


async def _round(rt: Runtime, client: PeerClient, failing: set[str]) -> list[float]:
    """Pull from every peer not inside its back-off; returns the retry times of those skipped."""
    waiting = []
    for url in await peer_urls(rt):
        st = rt.peers.get(url)
        if st is not None and st.retry_at > time.monotonic():
            waiting.append(st.retry_at)
            continue
        try:
            await client.pull(url)
            if url in failing:
                failing.discard(url)
                log.info("pull from %s works again", url, extra={"fields": {"event": "pull_ok", "peer": url}})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failing.add(url)
            _failed(url, exc)
    return waiting


async def serve_pokes(rt: Runtime, client: PeerClient) -> bool:
    """Fetch from each poker what its poke announced; False when one could not be served (the caller
    then runs a full round)."""
    items = list(rt.announced.items())
    rt.announced.clear()
    urls = await peer_urls(rt)
    ok = True
    for node, hv in items:
        url = next((u for u in urls if rt.url_nodes.get(u) == node), None)
        url = url or next((u for u in urls if (st := rt.peers.get(u)) is not None and st.node == node), None)
        if url is None:
            ok = False
            continue
        # a poker inside its back-off after one failure is fetched from all the same (its poke just proved it
        # is up); after repeated failures it is left to the full round that retries it (a poker that answers
        # slowly or wrongly cannot tie up this task with each poke)
        st = rt.peers.get(url)
        if st is not None and st.failures > 1 and st.retry_at > time.monotonic():
            continue
        try:
            await client.pull_announced(url, hv)
            rt.counters["pulls_on_poke"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            ok = False
            _failed(url, exc)
            continue
        # a poker that did not deliver what it announced (or a gap) leaves this node behind: a full round
        ok = ok and not await _still_behind(rt, hv)
    return ok


async def _still_behind(rt: Runtime, hv: HeadVector) -> bool:
    theirs = headsmod.of_members(hv.heads, (await rt.manifest()).nodes)
    return "behind" in headsmod.compare((await rt.summary())["heads"], theirs).values()


async def _either(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until ``a`` or ``b`` is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        for w in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await w


async def _serve_until_woken(rt: Runtime, client: PeerClient, timeout: float) -> None:
    """Until a full round is wanted (``pull_now``) or ``timeout`` passed, serve pokes as they come."""
    end = time.monotonic() + timeout
    while not rt.pull_now.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return
        if not rt.fetch_now.is_set():
            await _either(rt.pull_now, rt.fetch_now, left)
        if rt.fetch_now.is_set() and not rt.pull_now.is_set():
            rt.fetch_now.clear()
            if not await serve_pokes(rt, client):
                rt.pull_now.set()  # a poke could not be served alone: a full round


async def pull_loop(app: web.Application) -> None:
    """Pull from every peer on start, when woken and every ``pull_interval_seconds``; serve pokes between.

    With a broker, each round first waits (bounded) until the broker has delivered what it queued, so
    the pull fetches only what MQTT did not bring.  A peer whose last pull failed is retried after
    its backoff (1 s doubling up to the interval), not on every wake-up."""
    rt, client = app[RUNTIME], app[CLIENT]
    failing: set[str] = set()
    while True:
        rt.pull_now.clear()
        rt.announced.clear()  # a full round fetches whatever was announced before it
        rt.fetch_now.clear()
        await rt.mqtt_settled()
        waiting = await _round(rt, client, failing)
        rt.counters["pull_rounds"] += 1
        timeout = float(rt.cfg.sync.pull_interval_seconds)
        retry = [st.retry_at for st in rt.peers.values() if st.failures and st.retry_at]
        if retry:  # a failing peer is retried after its backoff, not only at the next interval
            timeout = min(timeout, max(0.1, min(retry) - time.monotonic()))
        await _serve_until_woken(rt, client, timeout)
        if waiting and rt.pull_now.is_set():  # woken while a peer backs off: wait for its retry time
            await asyncio.sleep(max(0.0, min(waiting) - time.monotonic()))
