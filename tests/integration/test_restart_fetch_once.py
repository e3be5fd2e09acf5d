"""After a restart each missing change-set arrives once (issue 9): not from the broker's queue AND
again by pull.  A node stopped cleanly keeps its MQTT session; the broker delivers what it queued
and the pull, which waits for that delivery, fetches nothing again.  Over HTTP alone the pull
fetches each missing change-set once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow
K = 12


@pytest.mark.parametrize("transport", ["http", "mqtt"])
def test_missed_changesets_arrive_once_after_a_restart(tmp_path: Path, transport: str) -> None:
    broker = Mosquitto(tmp_path / "broker").start() if transport == "mqtt" else None
    fed = Federation(tmp_path, ("eu", "osce"), mqtt=broker.url if broker else "", pull_interval=30)
    try:
        fed.start()
        fed["eu"].put(entry("DEU/technical"))
        fed.wait_converged()
        fed["osce"].stop()  # clean stop: with a broker its persistent session keeps queueing
        for i in range(K):
            fed["eu"].put(entry("FRA/technical", notes=f"missed {i}"))
        if broker:  # eu has published them all to the broker before osce comes back
            wait_for(
                lambda: fed["eu"].stats(as_node=fed["osce"])["counters"].get("mqtt_published", 0) >= K + 1,
                30,
                "eu to publish",
            )
        fed["osce"].start()
        fed.wait_converged(timeout=60)
        wait_for(
            lambda: fed["osce"].stats(as_node=fed["eu"])["counters"].get("changesets_accepted", 0) >= K,
            10,
            "the counters",
        )
        stats = fed["osce"].stats(as_node=fed["eu"])
        c = stats["counters"]
        pulled = sum(p["received"] for p in stats["peers"].values())
        print(
            f"{transport}: {K} missed change-sets; accepted {c.get('changesets_accepted')}, duplicates "
            f"{c.get('changesets_duplicate', 0)}, by pull {pulled}"
        )
        assert c.get("changesets_accepted") == K
        assert c.get("changesets_duplicate", 0) == 0
        assert pulled == (0 if broker else K)  # with a broker, the queue brought them all
    finally:
        fed.stop()
        if broker:
            broker.stop()
