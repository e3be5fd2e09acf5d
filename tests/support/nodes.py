"""Real nodes for integration tests: `pocsync run` processes on loopback, set up with the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocsync.core.peerauth import sign_request
from pocsync.folder.nodedir import NodeDir
from pocsync.store import Store
from tests.support import procs
from tests.support.broker import free_port
from tests.support.cli import run
from tests.support.data import SCOPES, entry  # noqa: F401 — entry: the node tests import it from here


def wait_for(cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Node:
    name: str
    data: Path
    port: int
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the node process
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        exe = Path(sys.executable).parent / "pocsync"
        self.proc = subprocess.Popen(
            [str(exe), "run", "--data", str(self.data)],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        wait_for(self.up, 30, f"{self.name} to listen")
        return self

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/node", timeout=1) as r:
                return r.status == 200
        except OSError:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                ) from None
            return False

    def stop(self) -> None:
        procs.terminate(self.proc)
        self.proc = None

    def kill(self) -> None:
        procs.kill(self.proc)
        self.proc = None

    def store(self) -> Store:
        return Store.open(self.data / "store.sqlite")

    def digest(self) -> str:
        with self.store() as s:
            return s.digest()

    def put(self, *entries: dict[str, Any]) -> None:
        run("entry", "put", "--data", self.data, "-", "--author", f"staff@{self.name}", input=json.dumps(list(entries)))

    def signed_get(self, path: str, *, as_node: Node, method: str = "GET") -> tuple[int, bytes]:
        nd = NodeDir.open(as_node.data)
        key = nd.signing_key(nd.signing_key_names()[-1])
        auth = sign_request(
            node=as_node.name,
            keyid=f"{as_node.name}:{nd.signing_key_names()[-1]}",
            key=key,
            target=self.name,
            method=method,
            path=path,
            body=b"",
            now_ms=time.time_ns() // 10**6,
        )
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": auth})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stats(self, *, as_node: Node) -> dict[str, Any]:
        status, body = self.signed_get("/v1/peer/stats", as_node=as_node)
        assert status == 200, body
        return json.loads(body)


class Federation:
    """Nodes made with the CLI (root key, manifest, init, install), run as real processes."""

    def __init__(
        self,
        base: Path,
        names: tuple[str, ...] = ("un", "eu", "osce", "arf"),
        *,
        mqtt: str = "",
        pull_interval: int = 2,
        hidden: tuple[str, ...] = (),
        peers: dict[str, list[str]] | None = None,
        no_mqtt: tuple[str, ...] = (),
    ) -> None:
        self.base = base
        self.nodes: dict[str, Node] = {}
        run("keys", "root-init", "--out", base / "root")
        ports = {n: free_port() for n in names}
        for n in names:
            data = base / n
            args = ["init", "--node", n, "--data", data, "--listen", f"127.0.0.1:{ports[n]}"]
            if mqtt and n not in no_mqtt:
                args += ["--mqtt", mqtt]
            for p in (peers or {}).get(n, []):
                args += ["--peer", f"http://127.0.0.1:{ports[p]}"]
            run(*args)
            toml = data / "sync.toml"
            text = toml.read_text().replace("pull_interval_seconds = 30", f"pull_interval_seconds = {pull_interval}")
            if n in hidden:  # a node behind a firewall talks only to its configured peers
                text = text.replace("[sync]\n", "[sync]\ndiscover_peers = false\n")
            toml.write_text(text)
            info = json.loads(run("node-info", "--data", data).output)
            if n in hidden:  # not advertised in the manifest: other nodes cannot reach it
                info["endpoints"] = {}
            (base / f"{n}.info.json").write_text(json.dumps(info))
            self.nodes[n] = Node(n, data, ports[n])
        self.manifest = base / "manifest.json"
        run("manifest", "create", "--out", self.manifest, "--root-pub", base / "root" / "root.pub")
        for n in names:
            run(
                "manifest",
                "add-node",
                self.manifest,
                "--node-info",
                base / f"{n}.info.json",
                "--role",
                "un" if n == "un" else "regional",
                "--scope",
                SCOPES[n],
            )
        self.sign(self.manifest)
        for n in names:
            run("manifest", "install", "--data", self.nodes[n].data, self.manifest)

    def sign(self, path: Path) -> None:
        run("manifest", "sign", path, "--key", self.base / "root" / "root.key")

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def start(self, *names: str) -> Federation:
        for n in names or tuple(self.nodes):
            self.nodes[n].start()
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def digests(self, *names: str) -> dict[str, str]:
        return {n: self.nodes[n].digest() for n in names or self.nodes}

    def wait_converged(self, *names: str, timeout: float = 90.0) -> str:
        wait_for(
            lambda: len(set(self.digests(*names).values())) == 1,
            timeout,
            f"digests to converge: {self.digests(*names)}",
        )
        return next(iter(self.digests(*names).values()))

    def logs(self) -> str:
        return "\n".join(
            f"--- {n}\n{node.log.read_text()[-2000:]}" for n, node in self.nodes.items() if node.log.exists()
        )
