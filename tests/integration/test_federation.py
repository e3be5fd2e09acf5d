"""A running federation: real `pocsync run` processes, a real Mosquitto started by the test, real
HTTP on loopback.  Tests wait with generous timeouts; latency is measured in benchmarks."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from tests.support.broker import Mosquitto
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


class Sniffer:
    """A subscriber on '#' with broker access but no node key."""

    def __init__(self, port: int) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"sniffer-{uuid.uuid4().hex[:6]}")
        self.c.on_message = self._on
        self.c.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on(self, client, userdata, msg) -> None:
        with self.lock:
            self.payloads.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def edit_everywhere(fed: Federation, tag: str) -> list[str]:
    """An edit at each node (a conflict on AUT/diplomatic between eu and osce); returns unique strings."""
    marks = [f"{tag}-{n}-{uuid.uuid4().hex[:8]}" for n in ("un", "eu", "osce", "arf")]
    fed["eu"].put(entry("AUT/diplomatic", notes=marks[1]), entry("DEU/technical", notes=marks[1]))
    fed["osce"].put(entry("AUT/diplomatic", notes=marks[2], person="B. Example"), entry("UKR/technical"))
    fed["arf"].put(entry("JPN/technical", notes=marks[3]))
    fed["un"].put(entry("BRA/diplomatic", notes=marks[0]))
    return marks


def test_four_nodes_converge_over_http_alone(tmp_path: Path) -> None:
    fed = Federation(tmp_path)
    try:
        fed.start()
        edit_everywhere(fed, "http")
        digest = fed.wait_converged()
        with fed["un"].store() as s:
            keys = {r["key"] for r in s.entries()}
        assert keys == {"AUT/diplomatic", "DEU/technical", "UKR/technical", "JPN/technical", "BRA/diplomatic"}
        assert digest.startswith("sha256:")
    finally:
        fed.stop()


def test_four_nodes_converge_over_mqtt_and_the_broker_sees_no_content(tmp_path: Path, broker: Mosquitto) -> None:
    sniffer = Sniffer(broker.port)
    fed = Federation(tmp_path, mqtt=broker.url, pull_interval=3600)  # MQTT alone must carry the edits
    try:
        fed.start()
        wait_for(
            lambda: all(fed[n].stats(as_node=fed["un"])["mqtt_connected"] for n in fed.nodes),
            30,
            "every node connected to the broker",
        )
        marks = edit_everywhere(fed, "mqtt")
        fed.wait_converged()
        wait_for(lambda: any(t.startswith("pocsync/v1/cs/") for t, _ in sniffer.payloads), 10, "sniffed traffic")
        fed.stop()
        wait_for(lambda: ("pocsync/v1/status/eu", b"offline") in sniffer.payloads, 10, "eu to announce offline")
    finally:
        fed.stop()
        sniffer.close()
    topics = {t for t, _ in sniffer.payloads}
    assert {"pocsync/v1/cs/eu", "pocsync/v1/cs/osce", "pocsync/v1/head/un", "pocsync/v1/status/arf"} <= topics
    blob = b"\n".join(p for _, p in sniffer.payloads)
    for secret in [*marks, "example.org", "A. Example", "B. Example", "AUT/diplomatic", "UKR"]:
        assert secret.encode() not in blob, f"{secret!r} leaked to the broker"
    status = [p for t, p in sniffer.payloads if t == "pocsync/v1/status/eu"]
    assert status[0] == b"online" and status[-1] == b"offline"


def test_broker_killed_and_restarted_mid_stream(tmp_path: Path, broker: Mosquitto) -> None:
    fed = Federation(tmp_path, mqtt=broker.url, pull_interval=5)
    try:
        fed.start()
        fed["eu"].put(entry("DEU/technical", notes="before"))
        fed.wait_converged()
        broker.kill()
        fed["eu"].put(entry("FRA/technical", notes="during"))
        fed["arf"].put(entry("JPN/technical", notes="during"))
        fed.wait_converged(timeout=60)  # HTTP pull repairs while the broker is down
        broker.start()
        fed["osce"].put(entry("UKR/technical", notes="after"))
        digest = fed.wait_converged()
        with fed["un"].store() as s:
            assert {r["key"] for r in s.entries()} == {
                "DEU/technical",
                "FRA/technical",
                "JPN/technical",
                "UKR/technical",
            }
        wait_for(
            lambda: fed["eu"].stats(as_node=fed["un"])["counters"].get("mqtt_reconnects", 0) >= 1,
            30,
            "eu to count its reconnect",
        )
        assert digest == fed["arf"].digest()
    finally:
        fed.stop()


def test_node_sigkilled_while_others_edit_then_restarted(tmp_path: Path, broker: Mosquitto) -> None:
    fed = Federation(tmp_path, mqtt=broker.url)
    try:
        fed.start()
        fed["osce"].put(entry("AUT/technical"))
        fed.wait_converged()
        fed["arf"].kill()
        fed["eu"].put(entry("DEU/technical", notes="while arf is dead"))
        fed["un"].put(entry("MEX/diplomatic"))
        fed["arf"].put(entry("IDN/technical", notes="edit at the dead node's store, by the CLI"))
        fed["arf"].start()
        fed.wait_converged()
        with fed["eu"].store() as s:
            assert {r["key"] for r in s.entries()} == {
                "AUT/technical",
                "DEU/technical",
                "MEX/diplomatic",
                "IDN/technical",
            }
    finally:
        fed.stop()


def test_eu_cut_off_from_the_broker_reaches_others_through_osce(tmp_path: Path, broker: Mosquitto) -> None:
    # eu has no broker and no advertised endpoint: it talks only to osce over HTTP; osce relays, and
    # the others (on the broker, long pull interval) learn of eu's change-sets from osce's head vector.
    fed = Federation(
        tmp_path,
        mqtt=broker.url,
        hidden=("eu",),
        no_mqtt=("eu",),
        pull_interval=5,
        peers={"eu": ["osce"], "osce": ["eu"]},
    )
    try:
        fed.start()
        fed["eu"].put(entry("FRA/diplomatic", notes="from eu"))
        fed["un"].put(entry("CAN/technical", notes="from un"))
        fed.wait_converged()
        with fed["arf"].store() as s:
            assert any(r["key"] == "FRA/diplomatic" for r in s.entries())
            # arf never talks to eu: eu's change-set reached it relayed (over MQTT or pulled from osce/un)
            assert s.conn.execute("SELECT source FROM log WHERE origin='eu'").fetchone()[0] != "pull:eu"
        eu_stats = fed["eu"].stats(as_node=fed["osce"])
        assert list(eu_stats["peers"]) == [fed["osce"].url]
    finally:
        fed.stop()
