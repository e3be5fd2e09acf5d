"""Limits named in sync.toml (issue 18): each is read from the file, enforced, and crossing it leaves
the node serving (the next honest change-set, message or request still goes through)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from types import SimpleNamespace

import aiomqtt
import pytest

from pocsync.core import changeset as csmod
from pocsync.core import jsonc
from pocsync.core.envelope import CHANGESET_TYPE
from pocsync.core.replica import Limits
from pocsync.errors import ConfigError, PocsyncError
from pocsync.folder import config as cfgmod
from pocsync.store import Store
from pocsync.transport.mqtt import MqttLink
from tests.support.fed import T0, Fed, edit, put

LIMITED = """
[node]
id = "eu"

[limits]
max_parked_per_origin = 3
max_parked = 5
max_parked_bytes = 100000

[api]
token_requests_per_second = 2
max_pending_requests = 7

[mqtt]
url = "mqtt://127.0.0.1:1883"
max_inflight_messages = 4
max_queued_incoming_messages = 5
"""


@pytest.fixture()
def fed() -> Fed:
    return Fed()


def load(tmp_path: Path, text: str) -> cfgmod.Config:
    p = tmp_path / "sync.toml"
    p.write_text(text)
    return cfgmod.load(p)


def test_every_limit_is_read_from_sync_toml(tmp_path: Path) -> None:
    c = load(tmp_path, LIMITED)
    core = c.limits.core()
    assert (core.max_parked_per_origin, core.max_parked, core.max_parked_bytes) == (3, 5, 100000)
    assert (c.api.token_requests_per_second, c.api.max_pending_requests) == (2, 7)
    assert (c.mqtt.max_inflight_messages, c.mqtt.max_queued_incoming_messages) == (4, 5)
    d = load(tmp_path, '[node]\nid = "eu"\n')
    assert d.limits.core() == Limits()
    assert (d.api.token_requests_per_second, d.api.max_pending_requests) == (10, 64)
    assert (d.mqtt.max_inflight_messages, d.mqtt.max_queued_incoming_messages) == (20, 1000)


@pytest.mark.parametrize("section,key", [(s, k) for s, ks in cfgmod.POSITIVE_LIMITS.items() for k in ks])
def test_a_limit_below_one_is_a_config_error_naming_it(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"\\[{section}\\] {key} must be at least 1"):
        load(tmp_path, f'[node]\nid = "eu"\n[{section}]\n{key} = 0\n')


def unsigned(origin: str, seq: int) -> bytes:
    """A change-set citing a manifest version nobody has: parked unverified ("manifest_unknown")."""
    payload = jsonc.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": origin,
            "seq": seq,
            "prev": None,
            "hlc": "1763800000000-0000",
            "manifest": 999,
            "author": "x@example.org",
            "ops": [{"op": "delete", "key": "DEU/technical"}],
        }
    )
    return jsonc.dumps(
        {
            "payloadType": CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": f"{origin}:k1", "sig": base64.b64encode(bytes(64)).decode()}],
        }
    )


def test_parked_per_origin_and_total_caps_come_from_limits_and_the_node_still_applies(tmp_path: Path, fed: Fed) -> None:
    lim = load(tmp_path, LIMITED).limits.core()
    eu = Store.create(tmp_path / "eu.sqlite", node_id="eu", limits=lim)
    eu.install_manifest(fed.manifest, now_ms_=T0)
    for i in range(10):  # crosses max_parked_per_origin = 3
        assert eu.receive(unsigned("osce", 100 + i), source="mqtt", now_ms_=T0).reason == "manifest_unknown"
    seqs = [r[0] for r in eu.conn.execute("SELECT seq FROM parked WHERE origin='osce' ORDER BY seq")]
    assert seqs == [107, 108, 109]  # the newest three stay
    for i in range(10):  # crosses max_parked = 5 over claimed origins
        eu.receive(unsigned(f"n{i}", 5), source="mqtt", now_ms_=T0)
    assert eu.conn.execute("SELECT count(*) FROM parked").fetchone()[0] == 5
    out = eu.edit([put("DEU/technical")], key=fed.key("eu"), author="staff@eu", now_ms_=T0)
    assert out.status == "accepted"  # the node still signs and applies
    honest = fed.forge("osce", seq=1, prev=None, hlc="1763800000001-0000", ops=[put("AUT/technical")])
    assert eu.receive(honest, source="mqtt", now_ms_=T0).status == "accepted"


def test_ops_per_change_set_origin_refuses_to_sign_receivers_quarantine_and_go_on(fed: Fed) -> None:
    """MAX_OPS is a protocol constant (PROTOCOL.md §8: every node applies the same receipt rules)."""
    n = csmod.MAX_OPS + 1
    ops = [put("DEU/diplomatic", person=f"P. Example {i}") for i in range(n)]
    origin = fed.replica()
    with pytest.raises(PocsyncError) as exc:
        edit(origin, fed, "eu", ops)
    assert exc.value.reason == "too_many_ops"
    assert origin.state.heads() == {}  # nothing signed, nothing stored
    with pytest.raises(PocsyncError) as exc:  # within the op limit but over max_envelope_bytes
        edit(origin, fed, "eu", ops[: csmod.MAX_OPS])
    assert exc.value.reason == "oversize" and origin.state.heads() == {} and not origin.state.quarantined
    roomy = fed.replica(Limits(max_envelope_bytes=4 << 20))
    assert edit(roomy, fed, "eu", ops[: csmod.MAX_OPS]).status == "accepted"  # at the op limit: fine
    # A receiver: a change-set over the limit, signed by a member's key, is quarantined with its reason
    rep = fed.replica()
    payload = jsonc.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": "osce",
            "seq": 1,
            "prev": None,
            "hlc": "1763800000001-0000",
            "manifest": fed.manifest.version,
            "author": "x@example.org",
            "ops": [{"op": "delete", "key": f"AUT/k{i}"} for i in range(n)],
        }
    )
    big = csmod.sign(payload, keyid="osce:k1", key=fed.key("osce"))
    out = rep.receive(big, now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "too_many_ops")
    honest = fed.forge("osce", seq=1, prev=None, hlc="1763800000002-0000", ops=[put("AUT/technical")])
    assert rep.receive(honest, now_ms=T0).status == "accepted"  # the next honest one still applies


@pytest.mark.asyncio
async def test_mqtt_client_is_built_with_the_configured_bounds(tmp_path: Path) -> None:
    c = load(tmp_path, LIMITED)
    client = MqttLink(SimpleNamespace(cfg=c, me="eu"))._make_client()  # type: ignore[arg-type]
    assert client._queue.maxsize == 5
    assert client._client._max_inflight_messages == 4


@pytest.mark.asyncio
async def test_mqtt_incoming_queue_bound_drops_the_excess_and_the_client_still_receives(broker) -> None:
    """Crossing max_queued_incoming_messages on a real Mosquitto: the excess is dropped, memory stays
    bounded, and the next message is still delivered."""
    host, port = "127.0.0.1", broker.port
    async with (
        aiomqtt.Client(host, port, identifier="bounded", max_queued_incoming_messages=5) as sub,
        aiomqtt.Client(host, port, identifier="flooder") as pub,
    ):
        await sub.subscribe("pocsync/test/#", qos=1)
        for i in range(50):
            await pub.publish("pocsync/test/flood", str(i).encode(), qos=1)
        await pub.publish("pocsync/test/done", b"x", qos=1)
        for _ in range(200):  # until the flood has reached the subscriber's queue
            if sub._queue.qsize() >= 5:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert sub._queue.qsize() == 5  # bounded: 45 of the 51 dropped
        got = []
        for _ in range(5):
            got.append(await asyncio.wait_for(sub.messages.__anext__(), 10))
        await pub.publish("pocsync/test/after", b"ok", qos=1)
        after = await asyncio.wait_for(sub.messages.__anext__(), 10)
        assert str(after.topic) == "pocsync/test/after" and after.payload == b"ok"
        assert len(got) == 5
