"""`pocsync manifest publish` against the deploy broker (TLS, passwords, per-account ACL): success is quiet
and true, and each failure is one line with its reason."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import paho.mqtt.client as paho

from pocsync.core import manifest as mf
from tests.integration.test_deploy import PASSWORDS, broker  # noqa: F401 — the deploy broker fixture
from tests.support.cli import LocalFederation, sh


def retained_manifest(port: int, ca: Path) -> bytes | None:
    got: list[bytes] = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    c.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.username_pw_set("watcher", PASSWORDS["watcher"])
    c.on_message = lambda cl, ud, msg: got.append(msg.payload)
    c.on_connect = lambda cl, ud, flags, reason, props: cl.subscribe("pocsync/v1/manifest", qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    return got[0] if got else None


def test_publish_over_mqtts_with_the_operator_account(broker, tmp_path: Path) -> None:  # noqa: F811
    port, ca = broker
    fed = LocalFederation(tmp_path / "fed", nodes=("un", "eu"))
    for user in ("operator", "eu"):
        (tmp_path / f"{user}.pw").write_text(PASSWORDS[user] + "\n")
    (tmp_path / "wrong.pw").write_text("wrong\n")
    url = f"mqtts://127.0.0.1:{port}"

    def publish(*extra: str | Path):
        return sh(
            "manifest", "publish", fed.manifest, "--mqtt", url, "--ca-file", ca, "--timeout", "5", *extra, check=False
        )

    for extra, reason in [
        (("--username", "operator", "--password-file", tmp_path / "wrong.pw"), b"broker_refused"),
        ((), b"broker_refused"),
        (("--username", "eu", "--password-file", tmp_path / "eu.pw"), b"not_published"),
    ]:
        proc = publish(*extra)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and reason in proc.stderr and len(err.strip().splitlines()) == 1, (extra, err)
        assert b"Traceback" not in proc.stderr
    assert retained_manifest(port, ca) is None
    proc = sh(
        "manifest",
        "publish",
        fed.manifest,
        "--mqtt",
        url,
        "--timeout",
        "5",
        "--username",
        "operator",
        "--password-file",
        tmp_path / "operator.pw",
        check=False,
    )
    assert proc.returncode == 2 and b"broker_tls_error" in proc.stderr  # the test CA is not in the trust store
    proc = publish("--username", "operator", "--password-file", tmp_path / "operator.pw")
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    retained = retained_manifest(port, ca)
    assert retained is not None and mf.parse(retained).id == mf.parse(fed.manifest.read_bytes()).id
