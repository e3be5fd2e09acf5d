"""The daemon's tasks in process: nodes' real aiohttp applications (``build_app``) on loopback ports,
real SQLite stores, keys and a signed manifest; the pull loop, the publisher, the MQTT link, the
watchdog and shutdown — each waited on through the component's own state, never a fixed sleep."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from pocsync.core import heads
from pocsync.folder.nodedir import NodeDir
from pocsync.live.runtime import Runtime
from pocsync.live.worker import StoreWorker
from pocsync.node import daemon
from pocsync.store import Store
from pocsync.transport import mqtt as mqtt_mod
from tests.support.aio import app_with, edit, node_tasks, retained, runtime, serve, until
from tests.support.broker import Mosquitto, free_port
from tests.support.nodes import Federation, entry

#: the loops that run for the node's life (the watchdog and the source loop return at once without systemd
#: or [[sources]]; the read path adds its audit group-commit task)
TASKS = {"pocsync-pull", "pocsync-publisher", "pocsync-sampler", "pocsync-held", "pocsync-checks", "pocsync-audit"}


async def digest(rt: Runtime) -> str:
    return (await rt.summary())["digest"]


async def holds(rt: Runtime, origin: str, seq: int) -> bool:
    heads = (await rt.summary())["heads"]
    return origin in heads and heads[origin][0] >= seq


async def same_digest(a: Runtime, b: Runtime) -> bool:
    return await digest(a) == await digest(b)


@pytest.mark.asyncio
async def test_an_edit_is_poked_pulled_and_converges_then_shutdown_stops_every_task(pair: Federation) -> None:
    un, eu = await serve(pair["un"].data), await serve(pair["eu"].data)
    try:
        assert {t.get_name() for t in node_tasks()} >= TASKS
        rt_un, rt_eu = runtime(un), runtime(eu)
        st = rt_un.peers.get(pair["eu"].url)

        def pulled(rt: Runtime, url: str, n: int) -> bool:
            st = rt.peers.get(url)
            return st is not None and st.pulls >= n and st.failures == 0

        # on start each node pulls the other (a node started first retries after its back-off)
        await until(
            lambda: pulled(rt_un, pair["eu"].url, 1) and pulled(rt_eu, pair["un"].url, 1),
            what="each node's first successful pull of the other",
        )
        st = rt_un.peers[pair["eu"].url]
        pulls, rounds = st.pulls, rt_un.counters["pull_rounds"]
        # the CLI (another process in real life) commits at eu: eu's publisher sees the store change and pokes
        # un with its head vector; un's pull loop wakes and fetches the change-set from eu alone, with the
        # head vector the poke carried (no identify, no heads request, no full round; issue 13)
        out = await asyncio.to_thread(edit, pair["eu"].data, entry("AUT/technical"))
        await until(lambda: pulled(rt_un, pair["eu"].url, pulls + 1), what="un to pull after eu's poke")
        assert await same_digest(rt_un, rt_eu)
        assert rt_eu.counters["pokes_sent"] >= 1
        assert rt_un.counters["pulls_on_poke"] >= 1
        assert rt_un.counters["pull_rounds"] == rounds, "a poke is served without a full pull round"
        assert rt_un.counters["changesets_accepted"] == 1
        assert st.node == "eu"
        assert (await rt_un.summary())["heads"]["eu"][0] == out.seq
    finally:
        await un.close()
        await eu.close()
    assert node_tasks() == set(), "shutdown cancels and awaits every task of both nodes"


@pytest.mark.asyncio
async def test_an_own_edit_is_announced_at_once_while_a_changed_digest_waits_for_its_interval(
    pair: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "POKE_MIN_INTERVAL", 30.0)
    un, eu = await serve(pair["un"].data), await serve(pair["eu"].data)
    try:
        rt_un, rt_eu = runtime(un), runtime(eu)
        await until(lambda: rt_eu.counters["pokes_sent"] >= 1, what="eu's first announcement")
        # un's edit reaches eu: eu's digest changed without an own change-set, so eu may announce it only
        # after the minimum interval (30 s here) ...
        a = await asyncio.to_thread(edit, pair["un"].data, entry("ARG/technical"))
        await until(lambda: holds(rt_eu, "un", a.seq), what="eu to hold un's edit")
        rounds = rt_eu.counters["publish_rounds"]
        await until(lambda: rt_eu.counters["publish_rounds"] > rounds, what="eu's publish round after the receipt")
        # ... but an own edit committed meanwhile (by another process's store) is announced at once
        b = await asyncio.to_thread(edit, pair["eu"].data, entry("AUT/technical"))
        await until(lambda: holds(rt_un, "eu", b.seq), timeout=10, what="un to hold eu's edit (not after 30 s)")
    finally:
        await un.close()
        await eu.close()


@pytest.mark.asyncio
async def test_a_poke_that_cannot_be_served_alone_falls_back_to_a_full_round(pair: Federation) -> None:
    un, eu = await serve(pair["un"].data), await serve(pair["eu"].data)
    try:
        rt_un, rt_eu = runtime(un), runtime(eu)
        await until(lambda: rt_un.counters["pull_rounds"] >= 1, what="un's first pull round")
        hv = heads.verify(await rt_eu.head_vector(), await rt_un.manifest())
        rounds = rt_un.counters["pull_rounds"]
        # announced by a node whose address this node does not know: nothing to fetch it from alone
        rt_un.announced["nowhere"] = hv
        rt_un.fetch_now.set()
        await until(lambda: rt_un.counters["pull_rounds"] > rounds, what="a full round after an unservable poke")
        assert rt_un.counters["pulls_on_poke"] == 0 and not rt_un.announced
    finally:
        await un.close()
        await eu.close()


@pytest.mark.asyncio
async def test_pull_backs_off_while_the_peer_is_down_and_converges_when_it_is_back(pair: Federation) -> None:
    await asyncio.to_thread(edit, pair["eu"].data, entry("DEU/technical"))
    un = await serve(pair["un"].data)
    eu = None
    try:
        rt, client = runtime(un), un.app[daemon.CLIENT]
        url = pair["eu"].url
        await until(lambda: url in rt.peers and rt.peers[url].failures >= 1, what="the first pull of eu to fail")
        st = rt.peers[url]
        assert st.last_error and rt.node_state("eu")["state"] != "online"
        # a second failure doubles the retry delay (1 s, 2 s, … up to the pull interval)
        with pytest.raises(Exception):
            await client.pull(url)
        assert st.failures == 2 and 1.0 < st.retry_at - time.monotonic() <= 2.0
        # woken (a poke, a gap), the loop does not pull a peer inside its back-off
        rounds = rt.counters["pull_rounds"]
        rt.pull_now.set()
        await until(lambda: rt.counters["pull_rounds"] > rounds, what="a pull round")
        assert st.failures == 2 and time.monotonic() < st.retry_at
        # eu comes back: at the end of the back-off the loop pulls again and the nodes converge
        eu = await serve(pair["eu"].data)
        await until(lambda: st.pulls == 1, what="un's pull of eu at the end of the back-off")
        assert st.failures == 0 and st.retry_at == 0.0 and st.last_error is None
        assert await same_digest(rt, runtime(eu))
        assert rt.node_state("eu")["state"] == "online"
    finally:
        await un.close()
        if eu is not None:
            await eu.close()


@pytest.mark.asyncio
async def test_peer_client_backoff_doubles_up_to_the_pull_interval(pair: Federation) -> None:
    un = await serve(pair["un"].data)
    try:
        rt, client = runtime(un), un.app[daemon.CLIENT]
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        interval = float(rt.cfg.sync.pull_interval_seconds)
        gaps = []
        for _ in range(7):
            with pytest.raises(Exception):
                await client.pull(dead)
            gaps.append(rt.peers[dead].retry_at - time.monotonic())
        expected = [min(2.0**i, interval) for i in range(7)]
        assert expected[-2:] == [interval, interval]
        for got, want in zip(gaps, expected):
            assert want - 1.0 < got <= want, (gaps, expected)
        assert rt.peers[dead].failures == 7 and rt.counters["pull_errors"] >= 7
    finally:
        await un.close()


@pytest.mark.asyncio
async def test_change_sets_travel_over_mqtt_and_shutdown_says_offline(
    tmp_path: Path, broker: Mosquitto, quick_settle: None
) -> None:
    # eu is not advertised in the manifest: un cannot pull from it, so only the broker can bring eu's edit
    fed = Federation(tmp_path / "fed", ("un", "eu"), mqtt=broker.url, pull_interval=30, hidden=("eu",))
    un, eu = await serve(fed["un"].data), await serve(fed["eu"].data)
    try:
        assert {t.get_name() for t in node_tasks()} >= TASKS | {"pocsync-mqtt"}
        rt_un, rt_eu = runtime(un), runtime(eu)
        await until(lambda: rt_un.mqtt_connected and rt_eu.mqtt_connected, what="both links to connect")
        await asyncio.to_thread(edit, fed["eu"].data, entry("ITA/technical"))
        await until(lambda: same_digest(rt_un, rt_eu), what="eu's edit to reach un over MQTT")
        assert rt_eu.counters["mqtt_published"] == 1
        assert rt_un.counters["changesets_accepted"] == 1 and fed["eu"].url not in rt_un.peers
        await until(lambda: rt_un.node_state("eu")["mqtt"] == "online", what="eu's retained status at un")
    finally:
        await un.close()
        await eu.close()
    assert node_tasks() == set()
    assert await retained(broker, mqtt_mod.STATUS + "un") == b"offline"
    assert await retained(broker, mqtt_mod.STATUS + "eu") == b"offline"


@pytest.mark.asyncio
async def test_watchdog_is_fed_while_the_store_answers_and_stops_when_it_hangs(
    pair: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # systemd's WatchdogSec=0.1 s: fed every 0.05 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    loop = asyncio.get_running_loop()

    async def message() -> bytes:
        return await asyncio.wait_for(loop.sock_recv(sock, 64), 10)

    nd = NodeDir.open(pair["un"].data)
    worker = StoreWorker(nd.config.store_path, limits=nd.config.limits.core())
    await worker.start()
    app = app_with(daemon.RT, Runtime(nd=nd, worker=worker))
    task = asyncio.create_task(daemon.watchdog_loop(app), name="pocsync-watchdog")
    try:
        assert await message() == b"READY=1"
        for _ in range(3):
            assert await message() == b"WATCHDOG=1"
        # the store stops answering (its one thread is stuck): the watchdog is no longer fed and the loop
        # fails, so systemd restarts the node
        stuck, release = asyncio.Event(), threading.Event()

        def hang(store: Store) -> None:
            loop.call_soon_threadsafe(stuck.set)
            release.wait(30)

        hung = asyncio.create_task(worker.run(hang))
        await asyncio.wait_for(stuck.wait(), 10)
        done, _ = await asyncio.wait({task}, timeout=10)
        assert task in done, "the watchdog loop kept running while the store hung"
        assert isinstance(task.exception(), asyncio.TimeoutError)
        release.set()
        await hung
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await task
        await worker.close()
        sock.close()


@pytest.mark.asyncio
async def test_without_systemd_the_watchdog_only_returns(pair: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    app = app_with(daemon.RT, Runtime(nd=NodeDir.open(pair["un"].data), worker=None))  # type: ignore[arg-type]
    await asyncio.wait_for(daemon.watchdog_loop(app), 5)


@pytest.mark.asyncio
async def test_shutdown_ends_a_task_that_swallowed_its_cancellation(
    pair: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio.wait_for on Python 3.11 can swallow a cancellation that arrives as its inner await completes
    (CPython gh-86296); the publisher did so under an MQTT publish, and the node's shutdown then never ended."""
    monkeypatch.setattr(daemon, "CANCEL_GRACE_S", 0.05)
    swallowed = asyncio.Event()

    async def stubborn(app: object) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # as wait_for may do: the loop goes on
        await asyncio.Event().wait()

    app = app_with(daemon.RT, Runtime(nd=NodeDir.open(pair["un"].data), worker=None))  # type: ignore[arg-type]
    ctx = daemon.task_context("pocsync-stubborn", stubborn)(app)
    await ctx.__anext__()
    await until(lambda: any(t.get_name() == "pocsync-stubborn" for t in node_tasks()), what="the task to start")
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(ctx.__anext__(), 10)
    assert swallowed.is_set() and node_tasks() == set()
