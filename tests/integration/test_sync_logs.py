"""Node logs at INFO (issue 9): JSON lines, one per sync event, with ids, seqs and reasons and never
entry content — change-sets accepted, parked, quarantined (with reason), refused ops, manifest
installs, peer up/down transitions and shutdown."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest

from pocsync.core import changeset as csmod
from pocsync.core import seal
from pocsync.core.hlc import next_hlc
from pocsync.folder.nodedir import NodeDir
from tests.support.broker import Mosquitto
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow
SECRET = "log-secret-7f3a@example.org"


def events(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]


def has(log: Path, **want: object) -> bool:
    return any(all(e.get(k) == v for k, v in want.items()) for e in events(log))


def forge(fed: Federation, seq_ahead: int, ops: list[dict]) -> bytes:
    """A change-set signed with eu's real key, ``seq_ahead`` after eu's head."""
    nd = NodeDir.open(fed["eu"].data)
    with nd.store() as s:
        head = s.heads()["eu"]
        key = nd.key_for_next_edit(s)
    payload = csmod.build_payload(
        origin="eu",
        seq=head.seq + seq_ahead,
        prev=head.id if seq_ahead == 1 else "sha256:" + "0" * 64,
        hlc=next_hlc(head.hlc, 0),
        manifest=1,
        author="forger@eu",
        ops=ops,
    )
    return csmod.sign(payload, keyid="eu:" + nd.signing_key_names()[-1], key=key)


def test_sync_events_are_logged_as_json_lines_without_content(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    fed = Federation(tmp_path, ("eu", "osce"), mqtt=broker.url)
    for n in fed.nodes:
        toml = fed[n].data / "sync.toml"
        toml.write_text(toml.read_text() + '\n[log]\nformat = "json"\n')
    osce_log = fed["osce"].log
    try:
        fed.start()
        fed["eu"].put(entry("DEU/technical", emails=[SECRET]))
        fed.wait_converged()
        wait_for(lambda: has(osce_log, event="changeset_accepted", origin="eu", seq=1), 10, "accepted")
        assert has(osce_log, event="peer_up", node="eu")
        wait_for(lambda: has(fed["eu"].log, event="changeset_signed", origin="eu", seq=1, via="mqtt"), 10, "signed")

        # an op outside eu's scope, signed by eu (as a broken origin would): every peer refuses the op
        bad = forge(fed, 1, [{"op": "put", "key": "BRA/technical", "entry": entry("BRA/technical", emails=[SECRET])}])
        run("log", "import", "--data", fed["eu"].data, "-", input=bad + b"\n", ok=False)
        wait_for(lambda: has(osce_log, event="op_refused", origin="eu", seq=2, reason="out_of_scope"), 30, "refused")

        osce_pub = NodeDir.open(fed["osce"].data).sealing_key().public_key()
        host, port = "127.0.0.1", broker.port

        def send(plaintext: bytes) -> None:
            blob = seal.seal(
                plaintext, sender="eu", manifest=1, context="mqtt:pocsync/v1/cs/eu", recipients={"osce": osce_pub}
            )
            mqtt_publish.single("pocsync/v1/cs/eu", blob, qos=1, hostname=host, port=port)

        send(forge(fed, 3, [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")}]))  # a gap
        wait_for(lambda: has(osce_log, event="changeset_parked", origin="eu", seq=5, reason="gap"), 30, "parked")
        send(b'{"payload": "not a change-set"}')
        wait_for(
            lambda: any(e.get("event") == "changeset_quarantined" and e.get("reason") for e in events(osce_log)),
            30,
            "quarantined",
        )

        # a new manifest version reaches osce by pull
        m = tmp_path / "manifest-v2.json"
        run("manifest", "next", fed.manifest, "--out", m)
        run("manifest", "set-scope", m, "--node", "osce", "--from-seq", "1000", "--scope", "AUT,DEU,FRA,ITA,UKR,POL")
        fed.sign(m)
        run("manifest", "install", "--data", fed["eu"].data, m)
        wait_for(lambda: has(osce_log, event="manifest_installed", version=2), 30, "manifest installed")

        fed["eu"].stop()
        wait_for(lambda: has(osce_log, event="peer_down", node="eu"), 30, "peer down")
        fed["osce"].stop()
        assert has(osce_log, event="shutdown", node="osce")
        assert all(e["level"] in ("info", "warning", "error") and e["ts"].endswith("Z") for e in events(osce_log))
        quarantined = [e for e in events(osce_log) if e.get("event") == "changeset_quarantined"]
        assert quarantined[0]["level"] == "warning" and quarantined[0]["reason"]
    finally:
        fed.stop()
        broker.stop()
    for n in ("eu", "osce"):
        text = fed[n].log.read_text()
        assert SECRET not in text and "A. Example" not in text
