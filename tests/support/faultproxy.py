"""A fault-injecting TCP proxy for chaos tests (``tc netem`` is not available on these machines).

One :class:`Link` listens on a loopback port and forwards every connection to one target port. Its
faults can be changed at any time from any thread:

* ``latency_ms`` (+ ``jitter_ms``): each chunk is held that long before it is forwarded;
* ``bandwidth``: bytes per second per direction (each chunk waits len/bandwidth);
* ``reset_prob``: per forwarded chunk, the probability that both sides are reset (RST) — a lossy
  link as TCP sees it (a lost segment TCP cannot repair ends the connection);
* ``mode``: ``"up"`` forwards; ``"refuse"`` resets every connection, old and new (a partition that
  the kernel reports); ``"stall"`` keeps connections open but forwards nothing (a black hole:
  packets vanish, timeouts decide) until the mode changes back.

All links of a :class:`Proxy` run on one event loop in a daemon thread. Randomness comes from a
seeded ``random.Random`` so a run with the same seed makes the same kind of decisions (timing on a
shared machine still varies).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

CHUNK = 16384


@dataclass
class Faults:
    mode: str = "up"  # up | refuse | stall
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth: float = 0.0  # bytes/s; 0 = unlimited
    reset_prob: float = 0.0

    def clean(self) -> bool:
        return self == Faults()


@dataclass
class Link:
    name: str
    target_port: int
    proxy: Proxy
    port: int = 0
    faults: Faults = field(default_factory=Faults)
    conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = field(default_factory=set)
    server: asyncio.AbstractServer | None = None
    changed: asyncio.Event | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"conns": 0, "resets": 0, "bytes": 0, "refused": 0})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control (any thread) ---------------------------------------------------------------
    def set(self, **faults: Any) -> None:
        self.proxy.call(self._set, Faults(**faults))

    def heal(self) -> None:
        self.set()

    def _set(self, faults: Faults) -> None:
        self.faults = faults
        if faults.mode == "refuse":
            for a, b in list(self.conns):
                self._reset(a, b)
        assert self.changed is not None
        self.changed.set()
        self.changed = asyncio.Event()

    # -- data path (proxy loop) -------------------------------------------------------------
    @staticmethod
    def _rst(w: asyncio.StreamWriter) -> None:
        sock = w.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        w.transport.abort()

    def _reset(self, a: asyncio.StreamWriter, b: asyncio.StreamWriter) -> None:
        self.stats["resets"] += 1
        self._rst(a)
        self._rst(b)
        self.conns.discard((a, b))

    async def _wait_up(self) -> None:
        while self.faults.mode == "stall":
            assert self.changed is not None
            await self.changed.wait()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, pair: tuple) -> None:
        rng = self.proxy.rng
        try:
            while True:
                data = await src.read(CHUNK)
                if not data:
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                await self._wait_up()
                f = self.faults
                if f.mode == "refuse" or (f.reset_prob and rng.random() < f.reset_prob):
                    self._reset(*pair)
                    return
                delay = 0.0
                if f.latency_ms:
                    delay += max(0.0, f.latency_ms + rng.uniform(-f.jitter_ms, f.jitter_ms)) / 1000
                if f.bandwidth:
                    delay += len(data) / f.bandwidth
                if delay:
                    await asyncio.sleep(delay)
                await self._wait_up()
                if pair not in self.conns:
                    return
                dst.write(data)
                self.stats["bytes"] += len(data)
                await dst.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            self._reset(*pair)

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self.stats["conns"] += 1
        if self.faults.mode == "refuse":
            self.stats["refused"] += 1
            self._rst(cw)
            return
        await self._wait_up()
        if self.faults.mode == "refuse":
            self._rst(cw)
            return
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self._rst(cw)
            return
        pair = (cw, uw)
        self.conns.add(pair)
        try:
            await asyncio.gather(self._pipe(cr, uw, pair), self._pipe(ur, cw, pair))
        finally:
            if pair in self.conns:
                self.conns.discard(pair)
                for w in pair:
                    w.close()


class Proxy:
    """The links of one chaos run, served from one background event loop."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.links: dict[str, Link] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="faultproxy", daemon=True)
        self.thread.start()

    def call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def link(self, name: str, target_port: int) -> Link:
        link = Link(name, target_port, self)

        async def start() -> None:
            link.changed = asyncio.Event()
            link.server = await asyncio.start_server(link._handle, "127.0.0.1", 0)
            link.port = link.server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)
        self.links[name] = link
        return link

    def heal_all(self) -> None:
        for link in self.links.values():
            link.heal()

    def close(self) -> None:
        async def stop() -> None:
            for link in self.links.values():
                for a, b in list(link.conns):
                    link._reset(a, b)
                if link.server is not None:
                    link.server.close()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
