"""The API speaks TLS when configured; plain HTTP is refused off loopback unless a TLS proxy is declared."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.broker import free_port
from tests.support.nodes import Federation, wait_for


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    crt, k = tmp / "node.crt", tmp / "node.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    k.chmod(0o600)
    return crt, k


def set_api(toml: Path, **kv: object) -> None:
    lines = []
    for line in toml.read_text().splitlines():
        key = line.split("=")[0].strip()
        if key in kv:
            continue
        lines.append(line)
        if line.strip() == "[api]":
            for k, v in kv.items():
                lines.append(f"{k} = " + ("true" if v is True else "false" if v is False else f'"{v}"'))
    toml.write_text("\n".join(lines) + "\n")


def run_node(data: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "pocsync"), "run", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_plain_http_off_loopback_is_refused_unless_a_proxy_is_declared(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un",))
    toml = fed["un"].data / "sync.toml"
    set_api(toml, listen=f"0.0.0.0:{free_port()}")
    proc = run_node(fed["un"].data)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and b"off loopback without TLS" in err and b"Traceback" not in err
    port = free_port()
    set_api(toml, listen=f"0.0.0.0:{port}", behind_tls_proxy=True)
    proc = run_node(fed["un"].data)

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/node", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_for(up, 30, "the node behind a declared proxy")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_tls_listener_serves_https(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un",))
    crt, key = self_signed(tmp_path)
    port = free_port()
    set_api(
        fed["un"].data / "sync.toml",
        listen=f"127.0.0.1:{port}",
        tls_cert=crt,
        tls_key=key,
        public_url=f"https://127.0.0.1:{port}",
    )
    proc = run_node(fed["un"].data)
    ctx = ssl.create_default_context(cafile=str(crt))
    try:

        def up() -> bool:
            try:
                return urllib.request.urlopen(f"https://127.0.0.1:{port}/v1/node", timeout=1, context=ctx).status == 200
            except OSError:
                return False

        wait_for(up, 30, "https")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/node", timeout=2)
            plain_ok = True
        except Exception:
            plain_ok = False
        assert not plain_ok
    finally:
        proc.terminate()
        proc.wait(timeout=15)
