"""The README, followed literally: its install-and-run command works in a fresh copy with a fresh virtual
environment, its worked three-node example runs as written, and every pocsync command and flag it shows exists."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pocsync.store import Store
from tests.support import procs
from tests.support.broker import free_port
from tests.support.cli import run
from tests.support.nodes import wait_for

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def pocsync_lines() -> list[list[str]]:
    lines = []
    for block in shell_blocks():
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("pocsync "):
                lines.append(line.split()[1:])
    return lines


def test_readme_opens_with_the_two_commands() -> None:
    blocks = shell_blocks()
    assert blocks[0].strip() == "./scripts/demo" and blocks[1].strip() == "./scripts/test"
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec ./scripts/test")


@pytest.mark.parametrize("words", pocsync_lines(), ids=lambda w: " ".join(w[:3]))
def test_every_command_and_flag_in_the_readme_exists(words: list[str]) -> None:
    cmd = []
    for w in words:
        if w.startswith("-") or "/" in w or "." in w or w.isupper() or w[0].isdigit():
            break
        cmd.append(w)
    help_text = run(*cmd, "--help").output
    for flag in (w for w in words if w.startswith("--")):
        assert flag in help_text, f"`pocsync {' '.join(cmd)}` has no {flag}"


@pytest.mark.slow
def test_fresh_copy_installs_and_the_demo_converges(tmp_path: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    copy = tmp_path / "pocsync"
    for f in files:
        src = ROOT / f
        if src.is_file():
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / f)
    proc = subprocess.run(["./scripts/demo", "--duration", "15"], cwd=copy, capture_output=True, timeout=900)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    assert "converged" in out and "NOT converged" not in out
    assert (copy / ".venv" / "bin" / "pocsync").exists()
    assert "installing" in proc.stderr.decode(errors="replace")  # the install showed its progress
    again = subprocess.run(["scripts/lib/ensure-venv"], cwd=copy, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout + again.stderr == ""  # the next ./scripts/demo skips the install


# --- the worked example ------------------------------------------------------------------------------------
EXAMPLE_NODES = ("un", "eu", "osce")
MARK = re.compile(r"<!-- example(?::\s*(?P<file>[\w.-]+))? -->\n```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def example_blocks() -> list[tuple[str | None, str]]:
    """The marked blocks in README order: (file name or None, text)."""
    return [(m["file"], m["body"]) for m in MARK.finditer(README)]


def commands(block: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, comments (`  # …`) and blank lines dropped."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#\s.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def make_ca_and_certs(tls: Path) -> None:
    """The test's CA and a certificate per node for 127.0.0.1 (the README's certificates come from the reader's CA)."""
    tls.mkdir(parents=True)
    now = datetime.datetime.now(datetime.UTC)

    def cert(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        else:
            b = b.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example federation CA (test)")])
    (tls / "ca.crt").write_bytes(
        cert("Example federation CA (test)", ca_key, ca_name, ca_key, True).public_bytes(serialization.Encoding.PEM)
    )
    for n in EXAMPLE_NODES:
        key = ec.generate_private_key(ec.SECP256R1())
        (tls / f"{n}.crt").write_bytes(
            cert(f"{n}.example.org", key, ca_name, ca_key, False).public_bytes(serialization.Encoding.PEM)
        )
        (tls / f"{n}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tls / f"{n}.key").chmod(0o600)


def test_the_worked_example_has_the_three_nodes_and_leaves_out_only_systemd() -> None:
    marked = "\n".join(b for _, b in example_blocks())
    assert "--role un" in marked and "--public-url" in marked and "--tls-cert" in marked
    assert "systemctl" not in marked
    for n in EXAMPLE_NODES:
        assert f"pocsync init --node {n} " in marked and f"pocsync run --data /var/lib/pocsync/{n}" in marked
    unmarked = [b for b in shell_blocks() if b not in marked]
    assert any("systemctl" in b for b in unmarked)


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    """Every marked block, in order: three nodes over HTTPS alone converge, the withdrawal applies everywhere,
    the operator's status says converged, a PoC reads its entries, and manifest v2 reaches the nodes from un."""
    work = tmp_path / "work"
    work.mkdir()
    root = tmp_path / "fs"
    make_ca_and_certs(root / "etc" / "pocsync" / "tls")
    ca = root / "etc" / "pocsync" / "tls" / "ca.crt"
    ports = {n: free_port() for n in EXAMPLE_NODES}

    def localise(cmd: str) -> str:
        m = re.search(r"--node (\w+)", cmd)
        if m and "--listen 0.0.0.0:8443" in cmd:
            cmd = cmd.replace("--listen 0.0.0.0:8443", f"--listen 127.0.0.1:{ports[m[1]]}")
        for n, port in ports.items():
            cmd = cmd.replace(f"https://{n}.example.org:8443", f"https://127.0.0.1:{port}")
        cmd = cmd.replace("/var/lib/pocsync/", f"{root}/var/lib/pocsync/").replace(
            "/etc/pocsync/", f"{root}/etc/pocsync/"
        )
        assert ".example.org:" not in cmd and "0.0.0.0" not in cmd, cmd
        return cmd

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    tls = ssl.create_default_context(cafile=str(ca))
    running: dict[str, subprocess.Popen] = {}

    def node_up(n: str) -> bool:
        if running[n].poll() is not None:
            raise AssertionError(f"{n} exited {running[n].returncode}:\n{(tmp_path / f'{n}.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{ports[n]}/v1/node", timeout=2, context=tls) as r:
                return r.status == 200
        except OSError:
            return False

    def sh(cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, timeout=timeout)

    try:
        for file, body in example_blocks():
            if file is not None:
                (work / file).write_text(body)
                continue
            for cmd in map(localise, commands(body)):
                if cmd.startswith("pocsync run "):
                    n = Path(cmd.split("--data ")[1].split()[0]).name
                    running[n] = subprocess.Popen(
                        ["bash", "-c", "exec " + cmd],
                        cwd=work,
                        env=env,
                        stdout=open(tmp_path / f"{n}.log", "ab"),
                        stderr=subprocess.STDOUT,
                    )
                    wait_for(lambda n=n: node_up(n), 60, f"{n} to serve HTTPS")
                elif cmd.startswith("pocsync status "):  # exit 0 once converged: the federation needs a moment
                    last: list[subprocess.CompletedProcess] = []
                    wait_for(
                        lambda: last.append(sh(cmd)) or last[-1].returncode == 0,
                        120,
                        f"`{cmd}` to exit 0 (last: {last[-1].stdout.decode()[-2000:] if last else ''})",
                    )
                    assert b"converged" in last[-1].stdout and b"NOT converged" not in last[-1].stdout
                else:
                    proc = sh(cmd)
                    out = (proc.stdout + proc.stderr).decode(errors="replace")
                    assert proc.returncode == 0, f"`{cmd}` exited {proc.returncode}:\n{out[-3000:]}"
                    assert "Traceback" not in out
                    if cmd.startswith("curl "):
                        listed = json.loads(proc.stdout)
                        assert "AUT/technical" in json.dumps(listed) and "cyber-diplo@mfa-aut" in json.dumps(listed)
        assert set(running) == set(EXAMPLE_NODES)

        def stores() -> dict[str, Store]:
            return {n: Store.open(root / "var" / "lib" / "pocsync" / n / "store.sqlite") for n in EXAMPLE_NODES}

        def settled() -> bool:
            views = {}
            for n, s in stores().items():
                with s:
                    views[n] = (s.digest(), s.manifest().version, sorted(r["key"] for r in s.entries()))
            return len(set(map(str, views.values()))) == 1 and views["eu"][1] == 2

        wait_for(settled, 150, "the three nodes to hold manifest v2 and the same view")
        with stores()["osce"] as s:
            assert sorted(r["key"] for r in s.entries()) == ["AUT/diplomatic", "AUT/technical", "UKR/technical"]
            assert s.refused() == [] and s.quarantined() == []
    finally:
        for p in running.values():
            procs.terminate(p)
