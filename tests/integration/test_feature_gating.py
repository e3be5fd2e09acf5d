"""Feature gating in a running federation (issue 10, PROTOCOL.md §8.3): the toy op kind `note`."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from pocsync.core import envelope as dsse
from pocsync.core import manifest as mf
from pocsync.folder.nodedir import NodeDir
from pocsync.ops import health as healthmod
from tests.support.broker import Mosquitto
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for


@pytest.mark.slow
def test_toy_op_kind_in_a_running_federation_refused_before_the_flag_applied_after(tmp_path: Path) -> None:
    """Feature gating end to end: v2 switches toy-note off, a note signed then is refused everywhere;
    v3 switches it on (installed at one node, fetched by the others) and the note takes effect
    everywhere, with one digest."""
    fed = Federation(tmp_path, names=("un", "eu", "osce"))
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    run("manifest", "set-features", m2, "--features", "")
    fed.sign(m2)
    for n in fed.nodes:
        run("manifest", "install", "--data", fed[n].data, m2)
    fed["eu"].put(entry("AUT/technical"))
    with fed["eu"].store() as s:  # eu's own software refuses to sign a gated op (§8.2): sign it as another
        head = s.heads()["eu"]  # implementation (or an older pocsync) would have, then store it
        payload = json.dumps(
            {
                "type": "pocsync.changeset/v1",
                "origin": "eu",
                "seq": head.seq + 1,
                "prev": head.id,
                "hlc": max(head.hlc, f"{time.time_ns() // 10**6}-0000"),
                "manifest": 2,
                "author": "staff@eu",
                "ops": [{"op": "note", "key": "AUT", "text": "Exercise next week (fictional)"}],
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        env = dsse.sign(dsse.CHANGESET_TYPE, payload, "eu:k1", NodeDir.open(fed["eu"].data).signing_key("k1"))
        out = s.receive(env.to_bytes(), source="import")
        assert out.status == "accepted" and [r.reason for r in out.refused] == ["feature_off"]

    def notes_and_refusals(n: str) -> tuple[list, list, int]:
        with fed[n].store() as s:
            return (
                [tuple(r) for r in s.conn.execute("SELECT ns, key, origin FROM records")],
                [r["reason"] for r in s.refused()],
                s.manifest().version,
            )

    try:
        fed.start()
        fed.wait_converged()
        for n in fed.nodes:
            wait_for(lambda n=n: notes_and_refusals(n) == ([], ["feature_off"], 2), 30, f"{n} to refuse the note")
        m3 = tmp_path / "m3.json"
        m3.write_bytes(m2.read_bytes())
        run("manifest", "set-features", m3, "--features", "toy-note")
        fed.sign(m3)
        run("manifest", "install", "--data", fed["un"].data, m3)  # the others fetch it from un
        for n in fed.nodes:
            wait_for(
                lambda n=n: notes_and_refusals(n) == ([("note", "AUT", "eu")], [], 3),
                60,
                f"{n} to install v3 and apply the note",
            )
        digest = fed.wait_converged()
        with fed["un"].store() as s:
            assert s.digest() == digest
    finally:
        fed.stop()


@pytest.mark.slow
def test_node_lacking_a_feature_refuses_the_manifest_and_keeps_pulling(tmp_path: Path) -> None:
    """un holds a v2 enabling a feature eu's software lacks (as if un ran a newer pocsync): eu refuses to
    install it and counts that, its pulls from un keep working, what was signed under v1 flows, and
    what un signs under v2 waits at eu (parked manifest_unknown) until eu is upgraded."""
    fed = Federation(tmp_path, names=("un", "eu"))
    v2 = mf.set_features(mf.next_version(mf.parse(fed.manifest.read_bytes()).payload), ["future-feature"])
    m2 = tmp_path / "m2.json"
    m2.write_text(json.dumps(mf.unsigned(v2).envelope.to_json()))
    fed.sign(m2)
    res = run("manifest", "install", "--data", fed["eu"].data, m2, ok=False)
    assert res.exit_code != 0 and "unsupported_feature" in res.output
    fed["un"].put(entry("BRA/technical"))  # signed under v1
    signed = mf.parse(m2.read_bytes())
    with sqlite3.connect(fed["un"].data / "store.sqlite") as c:  # what a newer un would have installed
        c.execute(
            "INSERT INTO manifests (version, id, envelope, installed_at) VALUES (2, ?, ?, '2026-01-01')",
            (signed.id, signed.to_bytes()),
        )
    try:
        fed.start()
        wait_for(
            lambda: "BRA/technical" in {r["key"] for r in fed["eu"].store().entries()},
            60,
            "eu to receive what un signed under v1",
        )
        fed["un"].put(entry("MEX/technical"))  # signed under v2
        wait_for(
            lambda: [(p["origin"], p["reason"]) for p in fed["eu"].store().parked()] == [("un", "manifest_unknown")],
            60,
            "eu to park un's change-set signed under v2",
        )
        stats = fed["eu"].stats(as_node=fed["un"])
        assert stats["counters"].get("manifest_refused:unsupported_feature", 0) >= 1
        to_un = [p for p in stats["peers"].values() if p["node"] == "un"]
        wait_for(
            lambda: all(
                p["last_error"] is None and p["pulls"] > 0
                for p in [q for q in fed["eu"].stats(as_node=fed["un"])["peers"].values() if q["node"] == "un"]
            ),
            30,
            "eu's pulls from un to succeed",
        )
        assert to_un
        with fed["eu"].store() as s:
            assert s.manifest().version == 1
        # and the operator is told, in /v1/health and by `status`, why eu stays on v1
        op = run("token", "issue", "--data", fed["eu"].data, "--operator", "watch").output.strip()
        req = urllib.request.Request(fed["eu"].url + "/v1/health", headers={"Authorization": f"Bearer {op}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            h = json.loads(r.read())
        refused = h["manifest"]["refused"]
        assert (refused["version"], refused["reason"], refused["missing_features"]) == (
            2,
            "unsupported_feature",
            ["future-feature"],
        ), refused
        assert any("manifest v2 refused" in p and "future-feature" in p for p in healthmod.problems(h))
    finally:
        fed.stop()


def _health(node) -> dict:
    op = run("token", "issue", "--data", node.data, "--operator", "watch").output.strip()
    req = urllib.request.Request(node.url + "/v1/health", headers={"Authorization": f"Bearer {op}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_manifest_with_a_missing_feature_over_mqtt_is_refused_shown_and_sync_goes_on(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The same over the broker: a retained manifest v2 naming a feature eu lacks is refused (and shown in
    /v1/health), the MQTT reader survives it, and change-sets under v1 keep flowing over MQTT."""
    fed = Federation(tmp_path, names=("un", "eu"), mqtt=broker.url, pull_interval=3600)
    v2 = mf.set_features(mf.next_version(mf.parse(fed.manifest.read_bytes()).payload), ["future-feature"])
    m2 = tmp_path / "m2.json"
    m2.write_text(json.dumps(mf.unsigned(v2).envelope.to_json()))
    fed.sign(m2)
    try:
        fed.start()
        wait_for(
            lambda: all(fed[n].stats(as_node=fed["un"])["mqtt_connected"] for n in ("un", "eu")),
            30,
            "un and eu connected to the broker",
        )
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="operator", protocol=paho.MQTTv5)
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        c.publish("pocsync/v1/manifest", m2.read_bytes(), qos=1, retain=True).wait_for_publish(10)
        c.loop_stop()
        c.disconnect()
        wait_for(
            lambda: (_health(fed["eu"])["manifest"]["refused"] or {}).get("missing_features") == ["future-feature"],
            30,
            "eu to refuse manifest v2 and show it",
        )
        h = _health(fed["eu"])
        assert h["manifest"]["version"] == 1 and h["manifest"]["refused"]["via"] == "mqtt"
        assert any("manifest v2 refused" in p for p in healthmod.problems(h))
        fed["un"].put(entry("BRA/technical"))  # un also runs v1 (it lacks the feature too): flows over MQTT
        wait_for(
            lambda: "BRA/technical" in {r["key"] for r in fed["eu"].store().entries()},
            30,
            "eu to receive un's change-set after the refused manifest",
        )
        assert fed["eu"].stats(as_node=fed["un"])["mqtt_connected"]
        assert "Traceback" not in fed["eu"].log.read_text()
    finally:
        fed.stop()
