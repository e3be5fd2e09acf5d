"""A change-set that verifies but holds an unpaired surrogate escape (issue 10) never stalls a node.

Before the fix it was verified, then failed when stored (UnicodeEncodeError): `log import` crashed
with a traceback and an HTTP pull failed and retried forever.  Now strict JSON refuses it (reason
`lone_surrogate`, PROTOCOL.md §2) right after its signature verified: it is quarantined with that
reason, and the other change-sets keep flowing — over `log import`, over HTTP pull and over MQTT.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import manifest as mf
from pocsync.core.seal import seal
from pocsync.folder.nodedir import NodeDir
from tests.support.broker import Mosquitto
from tests.support.cli import LocalFederation, run
from tests.support.nodes import Federation, entry, wait_for


def poisoned(data: Path, node: str, *, seq: int = 1, prev: str | None = None, hlc: str = "1763800000100-0000") -> bytes:
    """A change-set of ``node`` signed with its real key, whose entry notes hold the escape \\ud800."""
    text = (
        '{"author":"staff@%s.example.org","hlc":"%s","manifest":1,"ops":[{"entry":{"emails":'
        '["cert-aut@example.org"],"holder_epoch":"%s","kind":"technical","notes":"before \\ud800 after",'
        '"organisation":"Example CSIRT (fictional)","state":"AUT"},"key":"AUT/technical","op":"put"}],'
        '"origin":"%s","prev":%s,"seq":%d,"type":"pocsync.changeset/v1"}'
        % (node, hlc, hlc, node, json.dumps(prev), seq)
    ).encode()
    nd = NodeDir.open(data)
    return dsse.sign(dsse.CHANGESET_TYPE, text, f"{node}:k1", nd.signing_key("k1")).to_bytes()


def quarantine_reasons(data: Path) -> list[tuple[str, str]]:
    with NodeDir.open(data).store() as s:
        return [(q["reason"], q["source"]) for q in s.quarantined()]


def test_log_import_quarantines_the_lone_surrogate_and_applies_the_rest(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path)
    fed.put(
        "eu",
        [
            {
                "state": "AUT",
                "kind": "technical",
                "organisation": "Example CSIRT of Austria (fictional)",
                "emails": ["duty@csirt-aut.example.org"],
                "available_24_7": True,
            }
        ],
    )
    good = fed.export("eu")
    bad = poisoned(fed.data("osce"), "osce")
    res = run("log", "import", "--data", fed.data("un"), "-", input=bad + b"\n" + good, ok=False)
    assert res.exit_code == 1, res.output  # something was quarantined: exit 1, no traceback
    assert "Traceback" not in res.output and "lone_surrogate" in res.output
    assert quarantine_reasons(fed.data("un")) == [("lone_surrogate", "import")]
    with NodeDir.open(fed.data("un")).store() as s:
        assert [r["key"] for r in s.entries()] == ["AUT/technical"]  # eu's change-set went through
        assert s.heads()["eu"].seq == 1 and "osce" not in s.heads()
    assert fed.digest("un") == fed.digest("eu")


def _insert_raw(data: Path, env: bytes) -> None:
    """Put an envelope into a store's log as a second implementation that accepted it would have."""
    e = dsse.parse(env, max_bytes=1 << 20)
    obj = json.loads(e.payload)
    with sqlite3.connect(data / "store.sqlite") as c:
        c.execute(
            "INSERT INTO log (origin, seq, id, hlc, prev, manifest, author, keyid, envelope, received_at,"
            " source, published) VALUES (?,?,?,?,?,?,?,?,?,?,?,1)",
            (
                obj["origin"],
                obj["seq"],
                csmod.changeset_id(e.payload),
                obj["hlc"],
                obj["prev"],
                1,
                obj["author"],
                e.signatures[0].keyid,
                env,
                "2026-01-01T00:00:00Z",
                "other-implementation",
            ),
        )


@pytest.mark.slow
def test_http_pull_quarantines_it_and_the_peer_keeps_serving_other_changesets(tmp_path: Path) -> None:
    fed = Federation(tmp_path, names=("un", "eu", "osce"))
    # eu relays a change-set of osce that a different implementation accepted; osce itself stays down
    _insert_raw(fed["eu"].data, poisoned(fed["osce"].data, "osce"))
    fed["eu"].put(entry("AUT/technical", notes="first"))
    try:
        fed.start("un", "eu")
        wait_for(
            lambda: any(
                r == "lone_surrogate" and src.startswith("pull") for r, src in quarantine_reasons(fed["un"].data)
            ),
            60,
            "un to quarantine the poisoned change-set it pulled from eu",
        )
        fed["eu"].put(entry("DEU/technical", notes="second"))  # the peer's other change-sets keep flowing
        fed.wait_converged("un", "eu")
        with fed["un"].store() as s:
            assert {r["key"] for r in s.entries()} == {"AUT/technical", "DEU/technical"}
            assert "osce" not in s.heads()
        peers = fed["un"].stats(as_node=fed["eu"])
        assert peers is not None
        assert "UnicodeEncodeError" not in fed["un"].log.read_text()
        assert "Traceback" not in fed["un"].log.read_text()
    finally:
        fed.stop()


@pytest.mark.slow
def test_mqtt_quarantines_it_and_later_changesets_keep_flowing(tmp_path: Path, broker: Mosquitto) -> None:
    fed = Federation(tmp_path, names=("un", "eu", "osce"), mqtt=broker.url, pull_interval=3600)
    try:
        fed.start("un", "eu")
        wait_for(
            lambda: all(fed[n].stats(as_node=fed["un"])["mqtt_connected"] for n in ("un", "eu")),
            30,
            "un and eu connected to the broker",
        )
        m = mf.parse(fed.manifest.read_bytes())
        topic = "pocsync/v1/cs/osce"
        blob = seal(
            poisoned(fed["osce"].data, "osce"),
            sender="osce",
            manifest=m.version,
            context=f"mqtt:{topic}",
            recipients={n: info.sealing_key for n, info in m.members().items() if n != "osce"},
        )
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="poisoner", protocol=paho.MQTTv5)
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        c.publish(topic, blob, qos=1).wait_for_publish(10)
        c.publish(topic, blob, qos=1).wait_for_publish(10)  # twice: the reader survives the first
        c.loop_stop()
        c.disconnect()
        for n in ("un", "eu"):
            wait_for(
                lambda n=n: ("lone_surrogate", "mqtt") in quarantine_reasons(fed[n].data),
                30,
                f"{n} to quarantine the poisoned change-set from MQTT",
            )
        fed["eu"].put(entry("AUT/technical", notes="after the poison"))
        fed.wait_converged("un", "eu", timeout=60)
        with fed["un"].store() as s:
            assert [r["key"] for r in s.entries()] == ["AUT/technical"]
        assert "Traceback" not in fed["un"].log.read_text()
    finally:
        fed.stop()
