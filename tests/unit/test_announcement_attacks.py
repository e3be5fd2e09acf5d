"""Attack review of the sync announcements (ADR 11): a head vector proves its signer was alive at its
hlc, not now — a replayed or retained old one must not show the node online or freshly announced."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from pocsync.core.heads import HeadVector
from pocsync.core.hlc import HLC
from pocsync.live.runtime import Runtime
from pocsync.store import Store

MEMBERS = {"eu": None, "osce": None, "un": None}


class FakeWorker:
    async def run(self, fn, *args):
        if fn is Store.summary:
            return {"heads": {"eu": (5, "sha256:e5")}, "equivocations": []}
        return fn(
            SimpleNamespace(
                require_manifest=lambda: SimpleNamespace(version=1, nodes=MEMBERS),
                note_announced_own=lambda seq, by, signed_ms=None: None,
            )
        )


def runtime() -> Runtime:
    cfg = SimpleNamespace(sync=SimpleNamespace(pull_interval_seconds=30), mqtt=SimpleNamespace(url=""))
    return Runtime(nd=SimpleNamespace(node_id="un", config=cfg), worker=FakeWorker())  # type: ignore[arg-type]


def hv(at: float) -> HeadVector:
    return HeadVector(
        node="osce",
        hlc=str(HLC(int(at * 1000), 0)),
        manifest=1,
        heads={"eu": (5, "sha256:e5")},
        digest="sha256:d",
        refused=0,
        quarantined=0,
        equivocations=(),
    )


def test_an_old_head_vector_replayed_or_retained_does_not_show_its_node_online() -> None:
    rt = runtime()
    week_ago = time.time() - 7 * 86_400
    asyncio.run(rt.on_head_vector(hv(week_ago), via="mqtt"))
    assert rt.node_state("osce")["state"] == "never seen"
    assert rt.contacts["osce"].hv is not None  # still recorded as its latest word
    assert time.time() - rt.contacts["osce"].hv_at >= 7 * 86_400 - 5  # and aged by its own hlc
    asyncio.run(rt.on_head_vector(hv(time.time()), via="poke"))
    assert rt.node_state("osce")["state"] == "online"


def test_heads_of_origins_no_manifest_names_neither_wake_a_pull_nor_make_status_say_ahead() -> None:
    from pocsync.ops.health import _compare

    rt = runtime()
    bogus = HeadVector(
        node="osce",
        hlc=str(HLC(int(time.time() * 1000), 0)),
        manifest=1,
        heads={"eu": (5, "sha256:e5"), "zz-not-a-member": (10**12, "sha256:x")},
        digest="sha256:d",
        refused=0,
        quarantined=0,
        equivocations=(),
    )
    assert asyncio.run(rt.on_head_vector(bogus, via="poke")) is False
    assert _compare({"eu": (5, "sha256:e5")}, "sha256:d", bogus, MEMBERS)["state"] == "same"
    real = HeadVector(
        node="osce",
        hlc=bogus.hlc,
        manifest=1,
        heads={"eu": (6, "sha256:e6")},
        digest="sha256:d",
        refused=0,
        quarantined=0,
        equivocations=(),
    )
    assert asyncio.run(rt.on_head_vector(real, via="poke")) is True
    assert _compare({"eu": (5, "sha256:e5")}, "sha256:d", real, MEMBERS)["state"] == "ahead"


def test_an_announcement_dated_in_the_future_does_not_pin_the_node_s_row() -> None:
    rt = runtime()
    rt.note_head(hv(time.time() + 86_400), via="poke")  # a clock a day ahead (or a hostile hlc)
    rt.note_head(hv(time.time()), via="poke")  # the node's next, honest announcement
    assert HLC.parse(rt.contacts["osce"].hv.hlc).ms / 1000 <= time.time()
    rt.note_head(hv(time.time() - 3600), via="mqtt")  # an older one still never replaces a newer one
    assert HLC.parse(rt.contacts["osce"].hv.hlc).ms / 1000 > time.time() - 60
