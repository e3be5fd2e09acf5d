"""A pulled batch that fails is not fetched again in full (issue 9): a proxy in front of the peer cuts
the first batch's body mid-way; the node keeps what it has, asks again from its current head at half
the batch size, and gets every change-set once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from aiohttp import web

from pocsync.folder.nodedir import NodeDir
from tests.support.broker import free_port
from tests.support.nodes import Federation, entry

pytestmark = pytest.mark.slow
N = 1200


class CuttingProxy:
    """Forwards to ``upstream``; cuts the body of the first change-set batch in half."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.port = upstream, free_port()
        self.batches: list[tuple[int, int, str]] = []  # (after, limit, "cut" | "ok")
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                request.method,
                self.upstream + request.path_qs,
                headers={k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")},
                data=body or None,
            ) as up,
        ):
            data = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "application/json")
        if request.path == "/v1/peer/changesets" and status == 200:
            q = parse_qs(urlparse(request.path_qs).query)
            cut = not any(b[2] == "cut" for b in self.batches)
            self.batches.append((int(q["after"][0]), int(q["limit"][0]), "cut" if cut else "ok"))
            if cut:
                resp = web.StreamResponse(status=200, headers={"Content-Type": ctype})
                resp.content_length = len(data)
                await resp.prepare(request)
                await resp.write(data[: len(data) // 2])
                request.transport.close()  # the connection drops mid-body
                return resp
        return web.Response(status=status, body=data, headers={"Content-Type": ctype})

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self) -> CuttingProxy:
        threading.Thread(target=self.run, daemon=True).start()
        self.ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_a_failed_batch_is_asked_again_at_half_size_from_the_current_head(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("eu", "osce"), hidden=("osce",), pull_interval=30)
    nd = NodeDir.open(fed["eu"].data)
    with nd.store() as store, store.transaction():
        key = nd.key_for_next_edit(store)
        for i in range(N):
            store.edit(
                [
                    {
                        "op": "put",
                        "key": "DEU/technical",
                        "entry": {
                            **entry("DEU/technical", notes=f"revision {i} " + "y" * 300),
                            "holder_epoch": "0000000000001-0000",
                        },
                    }
                ],
                key=key,
                author="bulk@eu",
            )
    proxy = CuttingProxy(f"http://127.0.0.1:{fed['eu'].port}").start()
    toml = fed["osce"].data / "sync.toml"  # osce reaches eu only through the proxy
    toml.write_text(toml.read_text().replace("peers = []", f'peers = ["http://127.0.0.1:{proxy.port}"]'))
    try:
        fed.start()
        fed.wait_converged(timeout=120)
        stats = fed["osce"].stats(as_node=fed["eu"])
        print("batches asked:", proxy.batches)
        first, second = proxy.batches[0], proxy.batches[1]
        assert first == (0, 500, "cut") and second == (0, 250, "ok")  # half the size, from the same head
        afters = [b[0] for b in proxy.batches[1:]]
        assert afters == sorted(set(afters))  # never the same range twice
        assert sum(1 for b in proxy.batches if b[2] == "cut") == 1
        assert stats["counters"].get("changesets_duplicate", 0) == 0 and stats["heads"]["eu"]["seq"] == N
        assert stats["counters"]["pull_errors"] == 1
        log = fed["osce"].log.read_text()
        assert "pull from http://127.0.0.1:%d failed" % proxy.port in log
    finally:
        fed.stop()
        proxy.stop()
