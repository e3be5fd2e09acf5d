"""Propagation: from the commit of an edit at one node to the change-set in the view of the 3 others.

Four nodes (un, eu, osce, arf) as daemon processes; edits are committed at eu by this process (as
``pocsync entry put`` does) at a steady rate; a watcher reads the other nodes' stores every 2 ms and
notes when each seq lands (it is applied to the view in the same transaction).  Limits in the same
run: broker one-way latency (aiomqtt publish → subscriber, same broker) and loopback HTTP one-way
latency (aiohttp client POST → handler).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from pocsync.bench.fed import Federation, free_port, wait_for
from pocsync.store import queries

OTHERS = ("un", "osce", "arf")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


class Mosquitto:
    """A private broker for the run (its own port and folder; never the machine's own service)."""

    def __init__(self, base: Path) -> None:
        sbin = Path("/usr/sbin/mosquitto")
        self.exe = shutil.which("mosquitto") or (str(sbin) if sbin.exists() else None)
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> Mosquitto:
        import socket

        self.base.mkdir(parents=True, exist_ok=True)
        conf = self.base / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.base}/\nlog_dest file {self.base}/mosquitto.log\n"
        )
        self.proc = subprocess.Popen(
            [str(self.exe), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(up, 15, "mosquitto to listen")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


async def _broker_one_way(port: int, n: int) -> list[float]:
    import aiomqtt

    lat: list[float] = []
    got = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", port) as sub, aiomqtt.Client("127.0.0.1", port) as pub:
        await sub.subscribe("bench/lat", qos=1)

        async def reader() -> None:
            async for m in sub.messages:
                lat.append(time.perf_counter() - float(m.payload.decode()))
                if len(lat) >= n:
                    got.set()
                    return

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.2)
        for _ in range(n):
            await pub.publish("bench/lat", str(time.perf_counter()).encode(), qos=1)
            await asyncio.sleep(0.005)
        await asyncio.wait_for(got.wait(), 30)
        task.cancel()
    return lat


def _http_one_way(n: int) -> list[float]:
    import aiohttp
    from aiohttp import web

    lat: list[float] = []
    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def h(request: web.Request) -> web.Response:
        t1 = time.perf_counter()
        lat.append(t1 - float(await request.text()))
        return web.Response(text="ok")

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/", h)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    ready.wait(10)

    async def client() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(n):
                async with s.post(f"http://127.0.0.1:{port}/", data=str(time.perf_counter())) as r:
                    await r.read()
                await asyncio.sleep(0.005)

    asyncio.run(client())
    loop.call_soon_threadsafe(loop.stop)
    th.join(10)
    return lat


class Watcher(threading.Thread):
    """Notes, for each other node, when each seq of ``origin`` first appears in its store."""

    def __init__(self, stores: dict[str, Path], origin: str) -> None:
        super().__init__(daemon=True)
        self.conns = {
            n: sqlite3.connect(f"file:{p}?mode=ro", uri=True, check_same_thread=False) for n, p in stores.items()
        }
        self.origin = origin
        self.seen: dict[str, dict[int, float]] = {n: {} for n in stores}
        self.last = {n: 0 for n in stores}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for n, c in self.conns.items():
                try:
                    top = queries.origin_head(c, self.origin)
                except sqlite3.OperationalError:
                    continue
                if top > self.last[n]:
                    t = time.perf_counter()
                    for s in range(self.last[n] + 1, top + 1):
                        self.seen[n][s] = t
                    self.last[n] = top
            time.sleep(0.002)


def _propagate(base: Path, *, mqtt: str, edits: int, rate: float, **sync: Any) -> dict[str, Any]:
    """``sync``: [sync] settings to give every node (default: none, the shipped defaults)."""
    names = ("un", "eu", "osce", "arf")
    fed = Federation(base, names, mqtt=mqtt)
    if sync:
        for n in names:
            fed[n].set_sync(**sync)
    fed.start()
    try:
        nd = fed["eu"].nd
        w = Watcher({n: fed[n].nd.config.store_path for n in OTHERS}, "eu")
        w.start()
        committed: dict[int, float] = {}
        t_start = time.perf_counter()
        with nd.store() as s:
            for i in range(edits):
                due = t_start + i / rate
                if (d := due - time.perf_counter()) > 0:
                    time.sleep(d)
                ops = [
                    {
                        "op": "put",
                        "key": "DEU/technical",
                        "entry": {
                            "state": "DEU",
                            "kind": "technical",
                            "organisation": "Example CSIRT of DEU (fictional)",
                            "emails": ["cert-deu@example.org"],
                            "available_24_7": True,
                            "notes": f"edit {i}",
                        },
                    }
                ]
                out = s.edit(ops, key=nd.key_for_next_edit(s), author="bench@eu")
                assert out.seq is not None  # an edit is always appended at a seq
                committed[out.seq] = time.perf_counter()
        last = max(committed)
        try:
            wait_for(lambda: all(w.last[n] >= last for n in OTHERS), 120, "the last edit at every node", step=0.01)
        finally:
            w.halt.set()
            w.join(5)
    finally:
        fed.stop()
    lat = [w.seen[n][s] - t for s, t in committed.items() for n in OTHERS if s in w.seen[n]]
    all_nodes = [
        max(w.seen[n][s] for n in OTHERS) - t for s, t in committed.items() if all(s in w.seen[n] for n in OTHERS)
    ]
    return {
        "edits": edits,
        "rate_per_s": rate,
        "samples": len(lat),
        "p50_ms": round(1000 * _pct(lat, 0.5), 2),
        "p99_ms": round(1000 * _pct(lat, 0.99), 2),
        "all_three_p50_ms": round(1000 * _pct(all_nodes, 0.5), 2),
        "all_three_p99_ms": round(1000 * _pct(all_nodes, 0.99), 2),
    }


def run(base: Path, *, edits: int, rate: float, samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    http_lim = _http_one_way(samples)
    hl50, hl99 = 1000 * _pct(http_lim, 0.5), 1000 * _pct(http_lim, 0.99)
    broker = Mosquitto(base / "broker")
    if broker.exe:
        with broker:
            bl = asyncio.run(_broker_one_way(broker.port, samples))
            b50, b99 = 1000 * _pct(bl, 0.5), 1000 * _pct(bl, 0.99)
            p = _propagate(base / "mqtt", mqtt=broker.url, edits=edits, rate=rate)
        out["propagation_mqtt"] = {
            "what": "commit at eu → change-set in the view at un, osce, arf (MQTT + HTTP), per node; 4 nodes",
            "figure": p["p50_ms"],
            "figure_p99": p["p99_ms"],
            "unit": "ms",
            "detail": p,
            "limit": round(b50, 3),
            "limit_p99": round(b99, 3),
            "limit_what": "broker one-way latency, aiomqtt QoS 1",
            "ratio": round(p["p50_ms"] / b50, 1),
            "ratio_p99": round(p["p99_ms"] / b99, 1),
            "target": "<= 10x",
            "higher_is_better": False,
        }
    else:
        out["propagation_mqtt"] = {
            "what": "propagation over MQTT",
            "figure": None,
            "limit": None,
            "ratio": None,
            "target": "<= 10x",
            "skipped": "mosquitto is not installed on this machine",
        }
    p = _propagate(base / "http", mqtt="", edits=edits, rate=rate)
    out["propagation_http"] = {
        "what": "commit at eu → change-set in the view at un, osce, arf, HTTP alone (poke + pull); 4 nodes",
        "figure": p["p50_ms"],
        "figure_p99": p["p99_ms"],
        "unit": "ms",
        "detail": p,
        "limit": round(hl50, 3),
        "limit_p99": round(hl99, 3),
        "limit_what": "loopback HTTP one-way latency, aiohttp",
        "ratio": round(p["p50_ms"] / hl50, 1),
        "ratio_p99": round(p["p99_ms"] / hl99, 1),
        "target": "<= 20x",
        "higher_is_better": False,
    }
    return out
