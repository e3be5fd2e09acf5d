"""Faults and attacks on a running federation: lost stores, forged traffic, manifest changes."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.client import MQTTv5

from pocsync.core import changeset as csmod
from pocsync.core import manifest as mf
from pocsync.core.seal import seal
from tests.support.broker import Mosquitto
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def test_deleted_store_refuses_to_sign_then_recovers(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu", "osce"))
    try:
        fed.start()
        for i in range(3):
            fed["eu"].put(entry("DEU/technical", notes=f"edit {i}"))
        before = fed.wait_converged()
        fed["eu"].stop()
        for f in fed["eu"].data.glob("store.sqlite*"):
            f.unlink()
        res = run("entry", "put", "--data", fed["eu"].data, "-", input=json.dumps(entry("FRA/technical")), ok=False)
        assert res.exit_code == 2 and "pocsync recover" in res.output
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "pocsync"), "run", "--data", str(fed["eu"].data)],
            capture_output=True,
            timeout=30,
        )
        assert proc.returncode == 2 and b"recover" in proc.stderr
        out = run("recover", "--data", fed["eu"].data, "--peer", fed["osce"].url).output
        assert "own head seq 0 → 3" in out
        assert fed["eu"].digest() == before
        fed["eu"].put(entry("FRA/technical"))
        fed["eu"].start()
        fed.wait_converged()
        with fed["un"].store() as s:
            assert s.heads()["eu"].seq == 4 and s.proofs() == []
    finally:
        fed.stop()


def test_restored_old_store_catches_up_before_it_signs_again(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"))
    try:
        fed.start()
        fed["eu"].put(entry("DEU/technical"))
        fed.wait_converged()
        fed["eu"].stop()
        backup = tmp_path / "backup"
        backup.mkdir()
        for f in fed["eu"].data.glob("store.sqlite*"):
            shutil.copy(f, backup / f.name)
        fed["eu"].put(entry("FRA/technical"))
        fed["eu"].start()
        fed.wait_converged()
        fed["eu"].stop()
        for f in fed["eu"].data.glob("store.sqlite*"):
            f.unlink()
        for f in backup.iterdir():
            shutil.copy(f, fed["eu"].data / f.name)  # the wrong way: restore a backup without `recover`
        fed["eu"].start()  # the daemon pulls, learns that un holds eu seq 2, and fetches it
        wait_for(lambda: fed["eu"].digest() == fed["un"].digest(), 30, "eu to catch up from peers")
        with fed["eu"].store() as s, fed["un"].store() as u:
            assert s.heads()["eu"] == u.heads()["eu"] and s.get_meta("announced_own_seq") == "2"
        fed["eu"].put(entry("ITA/technical"))  # caught up: signing resumes at seq 3, no equivocation
        fed.wait_converged()
        with fed["un"].store() as s:
            assert s.heads()["eu"].seq == 3 and s.proofs() == []
    finally:
        fed.stop()


def _forged_key_envelope(fed: Federation) -> bytes:
    m = mf.parse(fed.manifest.read_bytes())
    return csmod.sign(
        csmod.build_payload(
            origin="eu",
            seq=1,
            prev=None,
            hlc="1763800000000-0000",
            manifest=m.version,
            author="mallory",
            ops=[
                {
                    "op": "put",
                    "key": "DEU/technical",
                    "entry": {**entry("DEU/technical"), "holder_epoch": "1763800000000-0000"},
                }
            ],
        ),
        keyid="eu:k1",
        key=Ed25519PrivateKey.generate(),
    )


def test_forged_traffic_changes_no_view_and_is_counted(tmp_path: Path, broker: Mosquitto) -> None:
    fed = Federation(tmp_path, ("un", "eu", "osce"), mqtt=broker.url)
    try:
        fed.start()
        fed["osce"].put(entry("UKR/technical"))
        digest = fed.wait_converged()
        m = mf.parse(fed.manifest.read_bytes())
        members = {n: info.sealing_key for n, info in m.members().items()}
        forged = _forged_key_envelope(fed)

        def pub(topic: str, payload: bytes) -> None:
            mqtt_publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port, protocol=MQTTv5)

        pub("pocsync/v1/cs/eu", b"not even json")
        pub(
            "pocsync/v1/cs/eu",
            seal(forged, sender="eu", manifest=m.version, context="mqtt:pocsync/v1/cs/eu", recipients=members),
        )
        # the right key (a rogue insider at osce) outside its scope: the CLI refuses to sign it ...
        res = run("entry", "put", "--data", fed["osce"].data, "-", input=json.dumps(entry("JPN/technical")), ok=False)
        assert res.exit_code == 2 and "out_of_scope" in res.output and "nothing was committed" in res.output
        # ... so the insider signs it by hand into osce's log: the change-set is accepted, the op refused
        from pocsync.folder.nodedir import NodeDir

        with fed["osce"].store() as s:
            head = s.replica().state.heads()["osce"]
        rogue = csmod.sign(
            csmod.build_payload(
                origin="osce",
                seq=head.seq + 1,
                prev=head.id,
                hlc=f"{time.time_ns() // 10**6:013d}-0000",
                manifest=m.version,
                author="rogue@osce",
                ops=[{"op": "delete", "key": "JPN/technical"}],
            ),
            keyid="osce:k1",
            key=NodeDir.open(fed["osce"].data).signing_key("k1"),
        )
        res = run("log", "import", "--data", fed["osce"].data, "-", input=rogue + b"\n", ok=False)
        assert res.exit_code == 1 and "out_of_scope" in res.output
        # a replay of an old change-set
        with fed["osce"].store() as s:
            old = next(s.export(origin="osce"))
        pub(
            "pocsync/v1/cs/osce",
            seal(old, sender="osce", manifest=m.version, context="mqtt:pocsync/v1/cs/osce", recipients=members),
        )
        # peer endpoints: unsigned and badly signed requests
        import urllib.error
        import urllib.request

        for headers in ({}, {"Authorization": "Pocsync " + base64.b64encode(b'{"x":1}').decode()}):
            req = urllib.request.Request(fed["un"].url + "/v1/peer/changesets?origin=eu&after=0", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(req, timeout=5)
            assert exc.value.code == 401
        c = {}
        wait_for(
            lambda: (
                c.update(fed["un"].stats(as_node=fed["eu"])["counters"])
                or (
                    c.get("sealed_dropped", 0) >= 1
                    and c.get("changesets_quarantined:bad_signature", 0) >= 1
                    and c.get("changesets_duplicate", 0) >= 1
                )
            ),
            30,
            f"un to count the forgeries: {c}",
        )
        assert c.get("peer_requests_rejected:unsigned_request", 0) >= 1
        assert c.get("peer_requests_rejected:bad_envelope", 0) + c.get("peer_requests_rejected:malformed_json", 0) >= 1
        wait_for(lambda: fed["un"].store().refused() != [], 30, "un to refuse the out-of-scope op")
        with fed["un"].store() as s:
            assert [r["reason"] for r in s.refused()] == ["out_of_scope"]
            assert "bad_signature" in {q["reason"] for q in s.quarantined()}
        fed["osce"].put(entry("AUT/technical"))  # osce's own next edit still applies everywhere
        wait_for(
            lambda: len(set(fed.digests().values())) == 1 and fed.digests()["un"] != digest,
            60,
            "osce's next edit to converge",
        )
        with fed["eu"].store() as s:
            assert {r["key"] for r in s.entries()} == {"UKR/technical", "AUT/technical"}
    finally:
        fed.stop()


def test_peer_requests_are_rate_limited_and_shutdown_is_graceful(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=3600)
    try:
        fed.start()
        codes = [fed["un"].signed_get("/v1/peer/heads", as_node=fed["eu"])[0] for _ in range(80)]
        assert codes[0] == 200 and 429 in codes
        answer: list = []
        wait_for(
            lambda: answer.append(fed["un"].signed_get("/v1/peer/stats", as_node=fed["eu"])) or answer[-1][0] == 200,
            10,
            "the bucket to refill",
        )
        counters = json.loads(answer[-1][1])["counters"]
        assert counters["peer_requests_rejected:rate_limited"] >= codes.count(429)
        for n in ("un", "eu"):
            proc = fed[n].proc
            fed[n].stop()  # SIGTERM
            assert proc.returncode == 0, f"{n} exited {proc.returncode} on SIGTERM"
        with fed["un"].store() as s:
            assert s.verify_log()[1] == []
    finally:
        fed.stop()
