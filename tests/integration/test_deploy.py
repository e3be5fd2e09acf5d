"""deploy/: the Mosquitto config and ACL run in a real broker (TLS, passwords, per-node topics); the
systemd unit passes systemd-analyze; the Prometheus files parse and hold the documented alerts."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
import time
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
PASSWORDS = {"un": "un-secret", "eu": "eu-secret", "osce": "osce-secret", "operator": "operator-secret",
             "watcher": "watcher-secret"}


def _cert(subject: str, key, issuer: x509.Name | None = None, issuer_key=None, ca: bool = False) -> x509.Certificate:  # noqa: ANN001
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
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
    (certs / "server.key").write_bytes(srv_key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, pw in PASSWORDS.items():
        subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(passwd), user, pw],
                       check=True, capture_output=True)
    shutil.copy(DEPLOY / "mosquitto" / "acl", tmp_path / "acl")
    port = free_port()
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/passwd", str(passwd)).replace("/etc/mosquitto/acl", str(tmp_path / "acl"))
            .replace("/etc/mosquitto/certs", str(certs)).replace("/var/lib/mosquitto/", f"{tmp_path}/")
            .replace("listener 8883", f"listener {port} 127.0.0.1"))
    # test only: keep the invoking user (as root, mosquitto would switch to its own user, which cannot read
    # pytest's private temporary folder); ignored when not run as root
    (tmp_path / "mosquitto.conf").write_text(conf + f"\nlog_dest file {tmp_path}/mosquitto.log\nuser root\n")
    out = tmp_path / "mosquitto.out"
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
                            stdout=open(out, "wb"), stderr=subprocess.STDOUT)
    if not wait_port(port):
        proc.kill()
        log = tmp_path / "mosquitto.log"
        raise AssertionError(out.read_text() + (log.read_text() if log.exists() else ""))
    yield port, certs / "ca.crt"
    proc.terminate()
    proc.wait(timeout=10)


def client(port: int, ca: Path, user: str | None, password: str | None = None) -> tuple[paho.Client, list, int]:
    got: list = []
    rc: list = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
    c.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if user:
        c.username_pw_set(user, password)
    c.on_message = lambda cl, ud, msg: got.append((msg.topic, msg.payload))
    c.on_connect = lambda cl, ud, flags, reason, props: rc.append(reason)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not rc and time.monotonic() < deadline:
        time.sleep(0.02)
    return c, got, (rc[0].value if rc else -1)


def test_broker_with_deploy_config_enforces_per_node_topics(broker) -> None:
    port, ca = broker
    watcher, seen, rc = client(port, ca, "watcher", PASSWORDS["watcher"])
    assert rc == 0
    watcher.subscribe("pocsync/v1/#", qos=1)
    time.sleep(0.3)
    eu, _, rc = client(port, ca, "eu", PASSWORDS["eu"])
    op, _, _ = client(port, ca, "operator", PASSWORDS["operator"])
    assert rc == 0
    for topic in ("pocsync/v1/cs/eu", "pocsync/v1/cs/osce", "pocsync/v1/manifest", "pocsync/v1/head/osce"):
        eu.publish(topic, b"from eu", qos=1).wait_for_publish(5)
    op.publish("pocsync/v1/manifest", b"from operator", qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # anything refused would have arrived by now
    assert sorted(seen) == [("pocsync/v1/cs/eu", b"from eu"), ("pocsync/v1/manifest", b"from operator")]
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
    copy.write_text(unit.replace("/usr/bin/pocsync", str(exe)).replace("User=pocsync\n", "").replace("Group=pocsync\n", ""))
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    own = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "pocsync.service" in ln]
    assert proc.returncode == 0 and own == [], proc.stdout + proc.stderr


def test_prometheus_files_parse_and_hold_the_documented_alerts() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "pocsync-rules.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {"PocsyncOriginLag", "PocsyncNodeOffline", "PocsyncEquivocation", "PocsyncRefusedOps",
            "PocsyncManifestExpiring30d", "PocsyncManifestExpiring7d", "PocsyncManifestExpiring1d",
            "PocsyncHeldChangeObjected"} <= set(alerts)
    for r in alerts.values():
        assert r["expr"] and r["annotations"]["summary"] and r["labels"]["severity"]
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = conf["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["credentials_file"]
    assert "pocsync-rules.yml" in conf["rule_files"]
    compose = yaml.safe_load((DEPLOY / "container" / "compose.yaml").read_text())
    assert {"un", "eu", "osce", "arf", "mosquitto"} <= set(compose["services"])


def test_nodes_sync_over_mqtts_with_passwords_through_the_deploy_acl(broker, tmp_path: Path) -> None:
    """The daemon itself over mqtts:// with username and password file, under the per-node ACL."""
    from tests.support.nodes import Federation, entry

    port, ca = broker
    fed = Federation(tmp_path / "fed", ("un", "eu"), pull_interval=3600)  # no HTTP pull: MQTT must carry it
    for n in ("un", "eu"):
        pw = tmp_path / f"{n}.pw"
        pw.write_text(PASSWORDS[n] + "\n")
        pw.chmod(0o600)
        toml = fed[n].data / "sync.toml"
        text = toml.read_text().replace('url = ""', f'url = "mqtts://{n}@127.0.0.1:{port}"')
        text = text.replace('password_file = ""', f'password_file = "{pw}"\nca_file = "{ca}"')
        toml.write_text(text)
    try:
        fed.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(fed[n].stats(as_node=fed["un"])["mqtt_connected"]
                                                      for n in ("un", "eu")):
            time.sleep(0.2)
        assert all(fed[n].stats(as_node=fed["un"])["mqtt_connected"] for n in ("un", "eu"))
        fed["eu"].put(entry("DEU/technical"))
        fed["un"].put(entry("BRA/technical"))
        fed.wait_converged(timeout=60)
        with fed["un"].store() as s:
            assert s.conn.execute("SELECT source FROM log WHERE origin='eu'").fetchone()[0] == "mqtt"
    finally:
        fed.stop()
