"""deploy/: the Mosquitto config and ACL run in a real broker (TLS, passwords, per-node topics); the
systemd unit passes systemd-analyze; the Prometheus files parse and hold the documented alerts."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.broker import free_port, wait_port

DEPLOY = Path(__file__).parents[2] / "deploy"
PASSWORDS = {
    "un": "un-secret",
    "eu": "eu-secret",
    "osce": "osce-secret",
    "operator": "operator-secret",
    "watcher": "watcher-secret",
}


def _cert(subject: str, key, issuer: x509.Name | None = None, issuer_key=None, ca: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
    return b.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture()
def broker(tmp_path: Path):
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("pocsync test CA", ca_key, ca=True)
    srv = _cert("127.0.0.1", srv_key, issuer=ca.subject, issuer_key=ca_key)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (certs / "server.crt").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (certs / "server.key").write_bytes(
        srv_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, pw in PASSWORDS.items():
        subprocess.run(
            [shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(passwd), user, pw],
            check=True,
            capture_output=True,
        )
    shutil.copy(DEPLOY / "mosquitto" / "acl", tmp_path / "acl")
    port = free_port()
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    conf = (
        conf.replace("/etc/mosquitto/passwd", str(passwd))
        .replace("/etc/mosquitto/acl", str(tmp_path / "acl"))
        .replace("/etc/mosquitto/certs", str(certs))
        .replace("/var/lib/mosquitto/", f"{tmp_path}/")
        .replace("listener 8883", f"listener {port} 127.0.0.1")
    )
    # test only: keep the invoking user (as root, mosquitto would switch to its own user, which cannot read
    # pytest's private temporary folder); ignored when not run as root
    (tmp_path / "mosquitto.conf").write_text(conf + f"\nlog_dest file {tmp_path}/mosquitto.log\nuser root\n")
    out = tmp_path / "mosquitto.out"
    proc = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
        stdout=open(out, "wb"),
        stderr=subprocess.STDOUT,
    )
    if not wait_port(port):
        proc.kill()
        log = tmp_path / "mosquitto.log"
        raise AssertionError(out.read_text() + (log.read_text() if log.exists() else ""))
    yield port, certs / "ca.crt"
    proc.terminate()
    proc.wait(timeout=10)


class Watch:
    """What one paho client saw, with events to wait on (no fixed sleeps, issue 12)."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.reason: int = -1
        self.got: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()

    def on_connect(self, cl, ud, flags, reason, props) -> None:
        self.reason = reason.value
        self.connected.set()

    def on_message(self, cl, ud, msg) -> None:
        with self.cond:
            self.got.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def wait_message(self, topic: str, payload: bytes, timeout: float = 10) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: (topic, payload) in self.got, timeout)


def client(port: int, ca: Path, user: str | None, password: str | None = None) -> tuple[paho.Client, Watch, int]:
    w = Watch()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
    c.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if user:
        c.username_pw_set(user, password)
    c.on_message = w.on_message
    c.on_connect = w.on_connect
    c.on_subscribe = lambda cl, ud, mid, reasons, props: w.subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    w.connected.wait(10)  # CONNACK (accepted or refused) or nothing: -1
    return c, w, w.reason


def test_broker_with_deploy_config_enforces_per_node_topics(broker) -> None:
    port, ca = broker
    watcher, seen, rc = client(port, ca, "watcher", PASSWORDS["watcher"])
    assert rc == 0
    watcher.subscribe("pocsync/v1/#", qos=1)
    assert seen.subscribed.wait(10)  # SUBACK: the broker routes to the watcher from now on
    eu, _, rc = client(port, ca, "eu", PASSWORDS["eu"])
    op, _, _ = client(port, ca, "operator", PASSWORDS["operator"])
    assert rc == 0
    for topic in ("pocsync/v1/cs/eu", "pocsync/v1/cs/osce", "pocsync/v1/manifest", "pocsync/v1/head/osce"):
        eu.publish(topic, b"from eu", qos=1).wait_for_publish(5)
    op.publish("pocsync/v1/manifest", b"from operator", qos=1).wait_for_publish(5)
    # Instead of waiting a while for refused messages not to come: eu's last message goes after the refused
    # ones (each acknowledged, so already routed or dropped by the broker); Mosquitto delivers one
    # publisher's messages to a subscriber in order, so once it is here, any refused one would be too.
    eu.publish("pocsync/v1/cs/eu", b"end", qos=1).wait_for_publish(5)
    assert seen.wait_message("pocsync/v1/cs/eu", b"end"), seen.got
    assert seen.wait_message("pocsync/v1/manifest", b"from operator"), seen.got
    assert sorted(seen.got) == [
        ("pocsync/v1/cs/eu", b"end"),
        ("pocsync/v1/cs/eu", b"from eu"),
        ("pocsync/v1/manifest", b"from operator"),
    ]
    # no anonymous clients, no wrong passwords
    _, _, rc_anon = client(port, ca, None)
    _, _, rc_bad = client(port, ca, "eu", "wrong")
    assert rc_anon != 0 and rc_bad != 0
    for c in (watcher, eu, op):
        c.loop_stop()
        c.disconnect()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    unit = (DEPLOY / "systemd" / "pocsync.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "NoNewPrivileges=yes" in unit
    exe = Path(shutil.which("pocsync") or (Path(__import__("sys").executable).parent / "pocsync"))
    copy = tmp_path / "pocsync.service"
    copy.write_text(
        unit.replace("/usr/bin/pocsync", str(exe)).replace("User=pocsync\n", "").replace("Group=pocsync\n", "")
    )
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    own = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "pocsync.service" in ln]
    assert proc.returncode == 0 and own == [], proc.stdout + proc.stderr


def test_prometheus_files_parse_and_hold_the_documented_alerts() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "pocsync-rules.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {
        "PocsyncOriginLag",
        "PocsyncNodeOffline",
        "PocsyncEquivocation",
        "PocsyncRefusedOps",
        "PocsyncManifestExpiring30d",
        "PocsyncManifestExpiring7d",
        "PocsyncManifestExpiring1d",
        "PocsyncHeldChangeObjected",
    } <= set(alerts)
    for r in alerts.values():
        assert r["expr"] and r["annotations"]["summary"] and r["labels"]["severity"]
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = conf["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["credentials_file"]
    assert "pocsync-rules.yml" in conf["rule_files"]
    compose = yaml.safe_load((DEPLOY / "container" / "compose.yaml").read_text())
    assert {"un", "eu", "osce", "arf", "mosquitto"} <= set(compose["services"])


def test_nodes_sync_over_mqtts_with_passwords_through_the_deploy_acl(broker, tmp_path: Path) -> None:
    """The daemon itself over mqtts:// with username and password file, under the per-node ACL.

    MQTT is the only way between the two nodes: no configured peers and no peer discovery, so no HTTP
    pull (on start, on reconnect, on a gap, on a retry) and no poke can bring a change-set first.  The
    test used to rely on a long pull interval only, and the pull on start or its retries sometimes won
    the race against the broker (both are legitimate paths): it then failed with source ``pull:eu``."""
    from tests.support.nodes import Federation, entry, wait_for

    port, ca = broker
    fed = Federation(tmp_path / "fed", ("un", "eu"), pull_interval=3600)
    for n in ("un", "eu"):
        pw = tmp_path / f"{n}.pw"
        pw.write_text(PASSWORDS[n] + "\n")
        pw.chmod(0o600)
        toml = fed[n].data / "sync.toml"
        text = toml.read_text().replace('url = ""', f'url = "mqtts://{n}@127.0.0.1:{port}"')
        text = text.replace('password_file = ""', f'password_file = "{pw}"\nca_file = "{ca}"')
        assert "discover_peers" not in text and "peers = []" in text  # no configured peer
        text = text.replace("[sync]\n", "[sync]\ndiscover_peers = false\n")  # nor any from the manifest
        toml.write_text(text)
    try:
        fed.start()
        # mqtt_connected: connected and subscribed (so nothing published from now on can pass this node by)
        wait_for(
            lambda: all(fed[n].stats(as_node=fed["un"])["mqtt_connected"] for n in ("un", "eu")),
            30,
            "both nodes on the broker",
        )
        fed["eu"].put(entry("DEU/technical"))
        fed["un"].put(entry("BRA/technical"))
        fed.wait_converged(timeout=60)
        with fed["un"].store() as s:
            assert [r[0] for r in s.conn.execute("SELECT source FROM log WHERE origin='eu'").fetchall()] == ["mqtt"]
        with fed["eu"].store() as s:
            assert [r[0] for r in s.conn.execute("SELECT source FROM log WHERE origin='un'").fetchall()] == ["mqtt"]
        for n, other in (("un", "eu"), ("eu", "un")):
            st = fed[n].stats(as_node=fed[other])
            assert st["peers"] == {} and not st["counters"].get("pull_errors"), st  # no HTTP pull was tried
            assert st["counters"]["mqtt_published"] >= 1 and st["counters"]["changesets_accepted"] >= 1, st
    finally:
        fed.stop()
