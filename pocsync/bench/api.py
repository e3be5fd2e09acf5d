"""Reads under load: ``GET /v1/entries`` and ``/v1/entries/{state}/{kind}`` with 200 PoC tokens at c = 32.

The limit is a bare aiohttp server (its own process, one worker like the node) serving the very
same body bytes, loaded by the same client in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from pocsync import tokens
from pocsync.bench.fed import Federation, Node, free_port, wait_for
from pocsync.bench.history import chain, keys_for

BARE = r"""
import sys
from aiohttp import web
body = open(sys.argv[2], "rb").read()
async def h(request):
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/{tail:.*}", h)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def _load(url: str, headers: list[dict[str, str]], *, concurrency: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker(w: int) -> None:
            nonlocal errors
            i = w
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                async with s.get(url, headers=headers[i % len(headers)]) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                lat.append(time.perf_counter() - t0)
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {
        "requests": len(lat),
        "errors": errors,
        "req_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
        "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2) if lat else None,
    }


def _bare(body: bytes, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    f = tmp / "bare_body.json"
    f.write_bytes(body)
    port = free_port()
    p = subprocess.Popen([sys.executable, "-c", BARE, str(port), str(f)])
    import urllib.request

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return True
        except OSError:
            return False

    wait_for(up, 30, "the bare aiohttp server")
    return p, port


def _fill(fed: Federation, un: Node, keys: list[str]) -> None:
    """One change-set of un putting every key, received into un's store."""
    with un.nd.store() as s, s.transaction():
        for e in chain(
            origin="un",
            key=un.nd.signing_key("k1"),
            keyid="un:k1",
            manifest=fed.manifest.version,
            count=1,
            keys=keys,
            ops_per_cs=len(keys),
        ):
            o = s.receive(e, source="bench")
            assert o.status == "accepted", (o.status, o.reason, o.message)


def _poc_headers(un: Node, keys: list[str], n_tokens: int) -> list[dict[str, str]]:
    """Authorization headers of ``n_tokens`` PoC tokens issued by un, one per key in turn."""
    now = int(time.time())
    toks = [
        tokens.issue_token(
            issuer="un",
            kid="un:t1",
            key=un.nd.token_key(),
            subject=keys[i % len(keys)],
            scope="directory",
            now_s=now,
            ttl_s=3600,
        )
        for i in range(n_tokens)
    ]
    return [{"Authorization": f"Bearer {t}"} for t in toks]


def _load_node(
    un: Node, one_path: str, headers: list[dict[str, str]], *, concurrency: int, seconds: float
) -> tuple[tuple[bytes, dict[str, Any]], tuple[bytes, dict[str, Any]]]:
    """Start un, load its list and one-entry reads; the body and figures of each."""
    un.start()
    try:
        import urllib.request

        req = urllib.request.Request(un.url + "/v1/entries", headers=headers[0])
        with urllib.request.urlopen(req, timeout=30) as r:
            list_body = r.read()
        with urllib.request.urlopen(urllib.request.Request(un.url + one_path, headers=headers[0]), timeout=30) as r:
            one_body = r.read()
        node_list = asyncio.run(_load(un.url + "/v1/entries", headers, concurrency=concurrency, seconds=seconds))
        node_one = asyncio.run(_load(un.url + one_path, headers, concurrency=concurrency, seconds=seconds))
    finally:
        un.stop()
    return (list_body, node_list), (one_body, node_one)


def _load_bare(
    base: Path, body: bytes, headers: list[dict[str, str]], *, concurrency: int, seconds: float
) -> dict[str, Any]:
    """The same load on a bare aiohttp server serving ``body``."""
    p, port = _bare(body, base)
    try:
        return asyncio.run(_load(f"http://127.0.0.1:{port}/x", headers, concurrency=concurrency, seconds=seconds))
    finally:
        p.terminate()
        p.wait(10)


def run(base: Path, *, entries: int, n_tokens: int, concurrency: int, seconds: float) -> dict[str, Any]:
    base.mkdir(parents=True, exist_ok=True)
    fed = Federation(base, ("un", "eu"))
    un = fed["un"]
    keys = keys_for(entries)
    _fill(fed, un, keys)
    headers = _poc_headers(un, keys, n_tokens)
    out: dict[str, Any] = {}
    one_path = "/v1/entries/" + keys[0]
    (list_body, node_list), (one_body, node_one) = _load_node(
        un, one_path, headers, concurrency=concurrency, seconds=seconds
    )
    for name, body, node, path, target in (
        ("api_list", list_body, node_list, "/v1/entries", ">= 0.5"),
        ("api_entry", one_body, node_one, "/v1/entries/{state}/{kind}", ">= 0.6"),
    ):
        bare = _load_bare(base, body, headers, concurrency=concurrency, seconds=seconds)
        out[name] = {
            "what": f"GET {path}, c = {concurrency}, {n_tokens} PoC tokens, {entries} entries (body {len(body)} B)",
            "figure": node["req_per_s"],
            "unit": "req/s",
            "node": node,
            "limit": bare["req_per_s"],
            "bare": bare,
            "limit_what": "bare aiohttp server, same body, same client",
            "ratio": round(node["req_per_s"] / bare["req_per_s"], 4) if bare["req_per_s"] else None,
            "target": target,
            "higher_is_better": True,
        }
    return out
