"""Helpers to drive the real ``pocsync`` CLI in tests (in-process with click, or as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from pocsync.cli.main import cli
from tests.support.data import SCOPES

ENTRIES = {
    "eu": [
        {
            "state": "AUT",
            "kind": "technical",
            "organisation": "Example CSIRT of Austria (fictional)",
            "position": "Duty officer",
            "emails": ["duty@csirt-aut.example.org"],
            "phones": ["+4315123456"],
            "available_24_7": True,
            "timezone": "Europe/Vienna",
            "languages": ["de", "en"],
        },
        {
            "state": "AUT",
            "kind": "diplomatic",
            "organisation": "Example MFA of Austria (fictional)",
            "person": "A. Example",
            "emails": ["cyber-diplo@mfa-aut.example.org"],
            "timezone": "Europe/Vienna",
        },
    ],
    "osce": [
        {
            "state": "AUT",
            "kind": "diplomatic",
            "organisation": "Example MFA of Austria (fictional)",
            "person": "B. Example",
            "emails": ["cyber-diplo@mfa-aut.example.org"],
            "timezone": "Europe/Vienna",
        },
        {
            "state": "UKR",
            "kind": "technical",
            "organisation": "Example CERT of Ukraine (fictional)",
            "emails": ["cert@cert-ukr.example.org"],
            "phones": ["+380441234567"],
            "available_24_7": True,
        },
    ],
}


def run(*args: str | Path, input: str | bytes | None = None, ok: bool = True) -> Result:
    res = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, f"pocsync {' '.join(map(str, args))} exited {res.exit_code}:\n{res.output}"
    return res


def pocsync_exe() -> list[str]:
    exe = Path(sys.executable).parent / "pocsync"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pocsync.cli.main"]


def sh(
    *args: str | Path, input: bytes | None = None, check: bool = True, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*pocsync_exe(), *map(str, args)],
        input=input,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"pocsync {args} -> {proc.returncode}\n{proc.stdout.decode()}\n{proc.stderr.decode()}")
    return proc


@dataclass
class LocalFederation:
    """A root key, a signed manifest and nodes in folders under ``base`` — made with the CLI."""

    base: Path
    nodes: tuple[str, ...] = ("un", "eu", "osce")

    def __post_init__(self) -> None:
        b = self.base
        run("keys", "root-init", "--out", b / "root")
        for n in self.nodes:
            run("init", "--node", n, "--data", self.data(n))
            (b / f"{n}.info.json").write_text(run("node-info", "--data", self.data(n)).output)
        self.manifest = b / "manifest.json"
        run("manifest", "create", "--out", self.manifest, "--root-pub", b / "root" / "root.pub")
        for n in self.nodes:
            run(
                "manifest",
                "add-node",
                self.manifest,
                "--node-info",
                b / f"{n}.info.json",
                "--role",
                "un" if n == "un" else "regional",
                "--scope",
                SCOPES.get(n, "all"),
            )
        run("manifest", "sign", self.manifest, "--key", b / "root" / "root.key")
        for n in self.nodes:
            run("manifest", "install", "--data", self.data(n), self.manifest)

    def data(self, node: str) -> Path:
        return self.base / node

    def put(self, node: str, entries: list[dict], *, ok: bool = True) -> Result:
        return run(
            "entry",
            "put",
            "--data",
            self.data(node),
            "-",
            "--author",
            f"staff@{node}",
            input=json.dumps(entries),
            ok=ok,
        )

    def export(self, node: str, *extra: str) -> bytes:
        return run("log", "export", "--data", self.data(node), *extra).stdout_bytes

    def sync_all(self) -> None:
        logs = {n: self.export(n) for n in self.nodes}
        for n in self.nodes:
            for m in self.nodes:
                if n != m:
                    run("log", "import", "--data", self.data(n), "-", input=logs[m])

    def digest(self, node: str) -> str:
        return run("digest", "--data", self.data(node)).output.strip()
