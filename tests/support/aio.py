"""Helpers for in-process async tests of the daemon (tests/inproc): wait on state with a deadline,
run a node's aiohttp application on its own loopback port, step a task's back-off by hand."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
from aiohttp import web
from aiohttp.test_utils import TestServer

from pocsync.folder.nodedir import NodeDir
from pocsync.node import daemon

Cond = Callable[[], "bool | Awaitable[bool]"]


async def until(cond: Cond, *, timeout: float = 15.0, what: str = "condition", step: float = 0.01) -> None:
    """Poll ``cond`` (plain or async) until it is true; fail clearly after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(step)


async def serve(data: Any, *, port: int | None = None) -> TestServer:
    """The node daemon's real application (``build_app``) served by aiohttp's TestServer on loopback:
    on the node's configured port (the one its manifest advertises to peers) unless ``port`` is given."""
    nd = NodeDir.open(data)
    app = daemon.build_app(nd)
    _, own_port = nd.config.api.host_port
    server = TestServer(app, host="127.0.0.1", port=port if port is not None else own_port)
    await server.start_server()
    return server


def runtime(server: TestServer) -> Any:
    return server.app[daemon.RT]


def node_tasks() -> set[asyncio.Task]:
    """The daemon's long-lived tasks now running on this loop (all named ``pocsync-*``)."""
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("pocsync-") and not t.done()}


class SteppedSleep:
    """Stands in for ``asyncio`` in one module (``monkeypatch.setattr(module, "asyncio", stepped)``): each
    ``sleep(d)`` is reported to the test, which then lets it end (``release``) — back-off without time."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.asked.put((delay, fut))
        await fut
        return result

    async def next(self, timeout: float = 15.0, what: str = "the next back-off sleep") -> tuple[float, Callable]:
        """The next sleep asked for: (its delay, a function that ends it)."""
        try:
            delay, fut = await asyncio.wait_for(self.asked.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}") from None

        def release() -> None:
            if not fut.done():
                fut.set_result(None)

        return delay, release


def app_with(key: web.AppKey, value: Any) -> web.Application:
    app = web.Application()
    app[key] = value
    return app


def edit(data: Any, *entries: dict[str, Any]) -> Any:
    """Sign and commit one edit at the node in ``data`` as the CLI does (call it with ``asyncio.to_thread``)."""
    nd = NodeDir.open(data)
    with nd.store() as store:
        key = nd.key_for_next_edit(store)
        ops = [{"op": "put", "key": f"{e['state']}/{e['kind']}", "entry": e} for e in entries]
        return store.edit(ops, key=key, author=f"staff@{nd.node_id}")


async def retained(broker: Any, topic: str) -> bytes:
    """The retained message on ``topic`` as a fresh subscriber sees it."""
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="pocsync-test-observer") as c:
        await c.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for msg in c.messages:
                return bytes(msg.payload)
    raise AssertionError(f"no retained message on {topic}")
