"""`pocsync manifest publish` through pocsync.transport.publish (aiomqtt) against a real Mosquitto: a refused
connection, a TLS failure and a bad URL are each one line on stderr with its reason, a non-zero exit and no
traceback; a publish that works says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.broker import Mosquitto, free_port
from tests.support.cli import run, sh


@pytest.fixture(scope="module")
def signed_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("publish")
    run("keys", "root-init", "--out", base / "root")
    m = base / "m1.json"
    run("manifest", "create", "--out", m, "--root-pub", base / "root" / "root.pub")
    run("manifest", "sign", m, "--key", base / "root" / "root.key")
    return m


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    b = Mosquitto(tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


def one_line_error(proc, reason: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 2, (proc.returncode, err)
    assert b"Traceback" not in proc.stderr, err
    assert len(err.strip().splitlines()) == 1 and f"({reason})" in err, err
    return err


def test_refused_connection_is_one_line(signed_manifest: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    proc = sh("manifest", "publish", signed_manifest, "--mqtt", url, "--timeout", "3", check=False)
    assert url in one_line_error(proc, "broker_unreachable")


def test_tls_to_a_plain_port_is_one_line(signed_manifest: Path, broker: Mosquitto, tmp_path: Path) -> None:
    proc = sh(
        "manifest",
        "publish",
        signed_manifest,
        "--mqtt",
        f"mqtts://127.0.0.1:{broker.port}",
        "--timeout",
        "3",
        check=False,
    )
    assert "TLS" in one_line_error(proc, "broker_tls_error")
    not_a_ca = tmp_path / "ca.pem"
    not_a_ca.write_text("not a certificate\n")
    proc = sh(
        "manifest",
        "publish",
        signed_manifest,
        "--mqtt",
        f"mqtts://127.0.0.1:{broker.port}",
        "--ca-file",
        not_a_ca,
        "--timeout",
        "3",
        check=False,
    )
    assert str(not_a_ca) in one_line_error(proc, "broker_tls_error")


@pytest.mark.parametrize("url", ["http://127.0.0.1:1883", "mqtt://127.0.0.1:notaport", "mqtt://:1883", "127.0.0.1"])
def test_bad_url_is_one_line(signed_manifest: Path, url: str) -> None:
    proc = sh("manifest", "publish", signed_manifest, "--mqtt", url, check=False)
    assert "mqtt://host:port or mqtts://host:port" in one_line_error(proc, "usage")


def test_publish_is_passed_back(signed_manifest: Path, broker: Mosquitto) -> None:
    res = run("manifest", "publish", signed_manifest, "--mqtt", broker.url, "--timeout", "5")
    assert "published manifest v1 on pocsync/v1/manifest (retained), and the broker passed it on" in res.output
