"""Manifest changes while the federation runs: add a node, rotate a key at a seq, remove a node,
restart a chain after an equivocation; a node that was down across two versions walks both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto, free_port
from tests.support.cli import run
from tests.support.nodes import Federation, Node, entry, wait_for

pytestmark = pytest.mark.slow


def versions(node: Node) -> list[int]:
    with node.store() as s:
        return s.manifest_versions()


def head(node: Node, origin: str) -> tuple[int, str]:
    with node.store() as s:
        h = s.heads()[origin]
        return h.seq, h.id


def test_federation_follows_manifest_changes_without_restarts(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    fed = Federation(tmp_path, ("un", "eu", "osce", "arf"), mqtt=broker.url, pull_interval=3)
    root = ["--key", tmp_path / "root" / "root.key"]
    running = ("un", "eu", "arf")

    def next_manifest(prev: Path, n: int) -> Path:
        path = tmp_path / f"manifest-v{n}.json"
        run("manifest", "next", prev, "--out", path)
        return path

    def release(path: Path, n: int) -> None:
        run("manifest", "sign", path, *root)
        run("manifest", "publish", path, "--mqtt", broker.url)
        wait_for(lambda: all(versions(fed[x])[-1] == n for x in running), 60, f"running nodes to install v{n}")

    try:
        fed.start(*running)  # osce stays down across v2 and v3
        fed["eu"].put(entry("DEU/technical"))
        fed.wait_converged(*running)

        # v2: add a node (oas)
        oas = Node("oas", tmp_path / "oas", free_port())
        run("init", "--node", "oas", "--data", oas.data, "--listen", f"127.0.0.1:{oas.port}", "--mqtt", broker.url)
        (tmp_path / "oas.info.json").write_text(run("node-info", "--data", oas.data).output)
        v2 = next_manifest(fed.manifest, 2)
        run(
            "manifest",
            "add-node",
            v2,
            "--node-info",
            tmp_path / "oas.info.json",
            "--role",
            "regional",
            "--scope",
            "BRA,CAN,MEX",
        )
        release(v2, 2)
        run("manifest", "install", "--data", oas.data, fed.manifest)
        run("manifest", "install", "--data", oas.data, v2)
        fed.nodes["oas"] = oas
        running += ("oas",)
        oas.start()
        oas.put(entry("BRA/technical"))
        fed.wait_converged(*running)

        # v3: rotate eu's key from its next seq; the CLI then signs with the new key by itself
        eu_next = head(fed["eu"], "eu")[0] + 1
        (tmp_path / "k2.json").write_text(run("keys", "new-signing", "--data", fed["eu"].data, "--name", "k2").output)
        v3 = next_manifest(v2, 3)
        run(
            "manifest", "rotate-key", v3, "--node", "eu", "--from-seq", str(eu_next), "--key-info", tmp_path / "k2.json"
        )
        release(v3, 3)
        fed["eu"].put(entry("FRA/technical"))
        fed.wait_converged(*running)
        with fed["un"].store() as s:
            assert (
                s.conn.execute("SELECT keyid FROM log WHERE origin='eu' AND seq=?", (eu_next,)).fetchone()[0] == "eu:k2"
            )

        # osce was down across v2 and v3: it walks both and catches up
        fed["osce"].start()
        wait_for(lambda: versions(fed["osce"]) == [1, 2, 3], 60, "osce to walk v2 and v3")
        running += ("osce",)
        fed.wait_converged(*running)

        # v4: remove arf from its next seq: it cannot sign any more, its earlier entries stay
        fed["arf"].put(entry("JPN/technical"))
        fed.wait_converged(*running)
        v4 = next_manifest(v3, 4)
        run("manifest", "remove-node", v4, "--node", "arf", "--from-seq", str(head(fed["un"], "arf")[0] + 1))
        release(v4, 4)
        res = run("entry", "put", "--data", fed["arf"].data, "-", input=json.dumps([entry("IDN/technical")]), ok=False)
        assert res.exit_code == 2 and "signing_refused" in res.output
        fed["arf"].stop()
        running = tuple(n for n in running if n != "arf")
        with fed["osce"].store() as s:
            assert "JPN/technical" in {r["key"] for r in s.entries()}

        # an equivocation by eu (a cloned store signs the same seq), then a chain restart by the root
        fed["eu"].stop()
        clone = tmp_path / "eu-clone"
        shutil.copytree(fed["eu"].data, clone)
        (clone / "sync.toml").write_text(
            (clone / "sync.toml").read_text().replace(str(fed["eu"].port), str(free_port()))
        )
        fork_seq = head(fed["un"], "eu")[0] + 1
        before_fork = head(fed["un"], "eu")[1]
        run("entry", "put", "--data", clone, "-", input=json.dumps([entry("ITA/technical", notes="branch b")]))
        fed["eu"].put(entry("ITA/technical", notes="branch a"))
        fed["eu"].start()
        # osce takes branch a first (else eu meets its own other branch and is blocked, not frozen)
        wait_for(lambda: head(fed["osce"], "eu")[0] == fork_seq, 60, "osce to hold eu's branch a")
        branch_b = run("log", "export", "--data", clone, "--origin", "eu", "--after", str(fork_seq - 1)).stdout_bytes
        run("log", "import", "--data", fed["osce"].data, "-", input=branch_b, ok=False)
        wait_for(lambda: all(fed[n].store().proofs() for n in running), 60, "every node to hold the proof")
        fed.wait_converged(*running)
        with fed["un"].store() as s:
            assert "ITA/technical" not in {r["key"] for r in s.entries()}  # both branches lost effect
        res = run("entry", "put", "--data", fed["eu"].data, "-", input=json.dumps([entry("AUT/technical")]), ok=False)
        assert res.exit_code == 2 and "frozen" in res.output
        (tmp_path / "k3.json").write_text(run("keys", "new-signing", "--data", fed["eu"].data, "--name", "k3").output)
        v5 = next_manifest(v4, 5)
        restart_seq = fork_seq + 5
        run(
            "manifest",
            "restart-chain",
            v5,
            "--node",
            "eu",
            "--from-seq",
            str(restart_seq),
            "--key-info",
            tmp_path / "k3.json",
            "--prev",
            before_fork,
        )
        release(v5, 5)
        fed["eu"].put(entry("AUT/technical", notes="after the restart"))
        fed.wait_converged(*running)
        with fed["osce"].store() as s:
            assert s.heads()["eu"].seq == restart_seq
            assert {"AUT/technical", "DEU/technical", "FRA/technical", "BRA/technical", "JPN/technical"} <= {
                r["key"] for r in s.entries()
            }
    finally:
        fed.stop()
        broker.stop()
