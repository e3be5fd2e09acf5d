"""Regressions from the attack on ADR 43 (found by a second engineer, 2026-12-03): a failed announcement
after a deferred one must not make the publisher spin, and a poke's head vector naming origins no manifest
names must not make the poked node send a request per name."""

from __future__ import annotations

import asyncio
import time

import pytest

from pocsync.core.heads import HeadVector
from pocsync.errors import SigningRefused
from pocsync.node import daemon
from pocsync.store import Store
from pocsync.transport.http import CLIENT
from tests.support.aio import edit, runtime, serve, until
from tests.support.nodes import Federation, entry


@pytest.mark.asyncio
async def test_a_deferred_announcement_that_fails_is_retried_after_the_poll_not_at_once(
    pair: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "POKE_MIN_INTERVAL", 2.0)
    un, eu = await serve(pair["un"].data), await serve(pair["eu"].data)
    try:
        rt_eu = runtime(eu)
        await until(lambda: rt_eu.counters["pokes_sent"] >= 1, what="eu's first announcement")

        async def refused() -> bytes:  # from now on eu cannot sign a head vector (e.g. its key closed)
            raise SigningRefused("eu is not a member of manifest v2")

        monkeypatch.setattr(rt_eu, "head_vector", refused)
        # un's edit reaches eu: eu's digest changed without an own change-set, so its announcement is deferred
        await asyncio.to_thread(edit, pair["un"].data, entry("ARG/technical"))
        await until(lambda: rt_eu.counters["publish_errors"] >= 1, timeout=20, what="the deferred announcement to fail")
        r0 = rt_eu.counters["publish_rounds"]
        await asyncio.sleep(1.0)  # the measure is a rate: rounds in one second
        rounds = rt_eu.counters["publish_rounds"] - r0
        assert rounds <= 10, f"the publisher spins: {rounds} rounds in one second (publish_poll_ms is 250 ms)"
    finally:
        await un.close()
        await eu.close()


@pytest.mark.asyncio
async def test_a_poke_naming_origins_outside_the_manifest_fetches_members_only(
    pair: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = Store.batch_after

    def counting(self: Store, origin: str, *a: object, **kw: object) -> object:
        asked.append(origin)
        return real(self, origin, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "batch_after", counting)
    un, eu = await serve(pair["un"].data), await serve(pair["eu"].data)
    try:
        rt_un, rt_eu = runtime(un), runtime(eu)
        await until(lambda: rt_un.counters["pull_rounds"] >= 1 and rt_eu.counters["pull_rounds"] >= 1, what="rounds")
        m = await rt_eu.manifest()
        summary = await rt_eu.summary()
        heads = dict(summary["heads"])
        seq, _ = heads.get("eu", (0, ""))
        heads["eu"] = (seq + 1, "x" * 43)  # a member head un lacks: served from the poker alone
        heads.update({f"zz{i:05d}": (1, "y" * 43) for i in range(2000)})  # origins no manifest names
        keyid, key = rt_eu.signer(m)
        hv = HeadVector(
            node="eu",
            hlc=f"{int(time.time() * 1000):013d}-0000",
            manifest=m.version,
            heads=heads,
            digest=summary["digest"],
            refused=summary["refused"],
            quarantined=summary["quarantined"],
            equivocations=(),
        ).sign(keyid=keyid, key=key)
        asked.clear()
        await eu.app[CLIENT].poke(pair["un"].url, "un", hv, timeout=10)  # one poke
        await until(lambda: rt_un.counters["pulls_on_poke"] >= 1, timeout=20, what="the poke to be served")
        assert "eu" in asked, "the member head the poke announced is fetched"
        assert not [o for o in asked if o.startswith("zz")], "no request for an origin outside the manifest"
    finally:
        await un.close()
        await eu.close()
