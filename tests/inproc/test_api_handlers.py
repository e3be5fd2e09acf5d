"""API handlers through aiohttp's TestClient, on the daemon's real application (middleware included)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient

from pocsync.node import daemon
from tests.support.aio import edit, serve
from tests.support.cli import run
from tests.support.nodes import Federation, entry


@pytest.mark.asyncio
async def test_directory_read_needs_a_token_and_serves_the_merged_view(pair: Federation) -> None:
    await asyncio.to_thread(edit, pair["un"].data, entry("FRA/technical"), entry("FRA/diplomatic"))
    token = run("token", "issue", "--data", pair["un"].data, "--poc", "FRA/technical", "--days", "1").output.strip()
    async with TestClient(await serve(pair["un"].data)) as client:
        resp = await client.get("/v1/node")  # public: who this node is
        assert resp.status == 200 and (await resp.json())["node"] == "un"

        resp = await client.get("/v1/entries")
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["status"] == 401
        resp = await client.get("/v1/entries", headers={"Authorization": "Bearer not-a-token"})
        assert resp.status == 401

        resp = await client.get("/v1/entries", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Content-Type-Options"] == "nosniff"
        keys = {e["key"] for e in json.loads(await resp.read())["entries"]}
        assert keys == {"FRA/technical", "FRA/diplomatic"}
        resp = await client.get("/v1/entries/FRA/diplomatic", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200 and (await resp.json())["entry"]["person"] == "A. Example"


@pytest.mark.asyncio
async def test_peer_routes_refuse_unsigned_requests_and_unknown_routes_are_problems(pair: Federation) -> None:
    async with TestClient(await serve(pair["un"].data)) as client:
        for path in ("/v1/peer/heads", "/v1/peer/changesets?origin=eu&after=0&limit=10"):
            resp = await client.get(path)
            assert resp.status == 401, path
            assert resp.content_type == "application/problem+json"
        resp = await client.post("/v1/peer/poke", data=b"{}")
        assert resp.status == 401
        resp = await client.get("/v1/no-such-route")
        assert resp.status == 404 and resp.content_type == "application/problem+json"
        rt = client.server.app[daemon.RT]
        assert rt.counters["api:/v1/peer/heads:401"] == 1
