"""The MQTT link (``MqttLink.run``) against a real Mosquitto, in process: connect, lose the broker,
back off (growing, jittered, capped), reconnect when it is back, end cleanly when cancelled.

The link's back-off sleeps are stepped by the test (``SteppedSleep``): no waiting for time."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiomqtt
import pytest

from pocsync.folder.nodedir import NodeDir
from pocsync.live.runtime import Runtime
from pocsync.live.worker import StoreWorker
from pocsync.transport import mqtt as mqtt_mod
from pocsync.transport.mqtt import MqttLink
from tests.support.aio import SteppedSleep, retained, until
from tests.support.broker import Mosquitto
from tests.support.nodes import Federation


@contextlib.asynccontextmanager
async def live_runtime(data: Path):
    nd = NodeDir.open(data)
    worker = StoreWorker(nd.config.store_path, limits=nd.config.limits.core())
    await worker.start()
    try:
        yield Runtime(nd=nd, worker=worker)
    finally:
        await worker.close()


@pytest.fixture()
def mqtt_pair(tmp_path: Path, broker: Mosquitto) -> Federation:
    return Federation(tmp_path / "fed", ("un", "eu"), mqtt=broker.url, pull_interval=30)


@pytest.mark.asyncio
async def test_link_backs_off_growing_and_capped_and_reconnects_after_a_broker_restart(
    mqtt_pair: Federation, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    stepped = SteppedSleep()
    monkeypatch.setattr(mqtt_mod, "asyncio", stepped)
    async with live_runtime(mqtt_pair["un"].data) as rt:
        link = MqttLink(rt)
        task = asyncio.create_task(link.run(), name="pocsync-mqtt")
        try:
            await until(lambda: rt.mqtt_connected, what="the link to connect and subscribe")
            assert rt.pull_now.is_set() and rt.publish_now.is_set(), "a (re)connect wakes the pull and the publisher"
            assert await retained(broker, mqtt_mod.STATUS + "un") == b"online"

            await asyncio.to_thread(broker.stop)  # the broker goes away: every reconnect attempt is refused
            cap = float(rt.cfg.mqtt.reconnect_max_seconds)
            expected = [min(0.5 * 2**i, cap) for i in range(9)]
            assert expected[-2:] == [cap, cap], "enough attempts to reach the cap"
            for i, base in enumerate(expected):
                delay, release = await stepped.next(what=f"back-off sleep {i + 1}")
                assert not rt.mqtt_connected and link.client is None
                assert 0.5 * base <= delay <= 1.5 * base, f"attempt {i + 1}: slept {delay} for a back-off of {base}"
                assert rt.counters["mqtt_reconnects"] == i + 1
                if i < len(expected) - 1:
                    release()
            # the broker is back (same port, same persistence); the pending back-off ends, the link reconnects
            await asyncio.to_thread(broker.start)
            rt.pull_now.clear()
            release()
            await until(lambda: rt.mqtt_connected, what="the link to reconnect")
            assert rt.pull_now.is_set(), "a reconnect wakes the pull (repair what was missed while away)"
            assert rt.counters["mqtt_reconnects"] == len(expected)
            assert await retained(broker, mqtt_mod.STATUS + "un") == b"online"

            # after a successful connection the back-off starts again from its first step
            await asyncio.to_thread(broker.stop)
            delay, release = await stepped.next(what="the back-off after a second broker loss")
            assert 0.25 <= delay <= 0.75

            # cancelled while backing off: the task ends at once, cleanly
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled() and link.client is None and not rt.mqtt_connected
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.asyncio
async def test_cancelling_a_connected_link_says_offline_and_ends(mqtt_pair: Federation, broker: Mosquitto) -> None:
    async with live_runtime(mqtt_pair["eu"].data) as rt:
        link = MqttLink(rt)
        task = asyncio.create_task(link.run(), name="pocsync-mqtt")
        try:
            await until(lambda: rt.mqtt_connected, what="the link to connect and subscribe")
            assert await retained(broker, mqtt_mod.STATUS + "eu") == b"online"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert task.done() and link.client is None and not rt.mqtt_connected
        # a clean shutdown publishes its status (the last will only covers a crash)
        assert await retained(broker, mqtt_mod.STATUS + "eu") == b"offline"
        assert rt.counters["mqtt_reconnects"] == 0


@pytest.mark.asyncio
async def test_a_member_status_on_the_broker_reaches_the_runtime(mqtt_pair: Federation, broker: Mosquitto) -> None:
    async with live_runtime(mqtt_pair["un"].data) as rt:
        task = asyncio.create_task(MqttLink(rt).run(), name="pocsync-mqtt")
        try:
            await until(lambda: rt.mqtt_connected, what="the link to connect and subscribe")
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="pocsync-test-publisher") as c:
                await c.publish(mqtt_mod.STATUS + "eu", b"online", qos=1, retain=True)
                await until(lambda: rt.node_state("eu")["mqtt"] == "online", what="eu's status to arrive")
                await c.publish(mqtt_mod.STATUS + "eu", b"offline", qos=1, retain=True)
                await until(lambda: rt.node_state("eu")["state"] == "offline", what="eu to show offline")
                await c.publish(mqtt_mod.STATUS + "nobody", b"online", qos=1, retain=True)  # not a member
                await c.publish(mqtt_mod.STATUS + "eu", b"online", qos=1, retain=True)
                await until(lambda: rt.node_state("eu")["state"] == "online", what="eu to show online again")
            assert "nobody" not in rt.contacts
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
