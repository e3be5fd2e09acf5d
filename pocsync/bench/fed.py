"""A federation on this machine for the benchmark: node folders, a signed manifest, `pocsync run` processes.

Built with the same library calls as ``pocsync init`` / ``manifest`` (as the demo does); nodes run as
real daemon processes on loopback.  Also: a byte-counting TCP relay (to measure what a pull costs on
the wire) and peak-RSS reading from /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64
from pocsync.folder import keyfiles
from pocsync.folder.nodedir import NodeDir

SCOPES = {
    "un": "all",
    "eu": "AUT,DEU,FRA,ITA",
    "osce": "AUT,DEU,FRA,ITA,UKR",
    "arf": "AUS,IDN,JPN",
    "oas": "BRA,CAN,MEX",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(cond: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> float:
    """Seconds waited until ``cond()`` held; raises TimeoutError naming ``what``."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - t0


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@dataclass
class Node:
    name: str
    nd: NodeDir
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id of the running node."""
        if self.proc is None:
            raise RuntimeError(f"node {self.name} is not running")
        return self.proc.pid

    @property
    def data(self) -> Path:
        return self.nd.config.base

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.name}.log"

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/node", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"node {self.name} exited {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                ) from None
            return False

    def start(self) -> Node:
        self.launch()
        wait_for(self.up, 60, f"node {self.name} to listen", step=0.05)
        return self

    def launch(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocsync.cli.main", "run", "--data", str(self.data)],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def set_sync(self, **settings: Any) -> None:
        """Add keys to [sync] of sync.toml (before start)."""
        toml = self.data / "sync.toml"
        lines = []
        for k, v in settings.items():
            if isinstance(v, bool):
                lines.append(f"{k} = {'true' if v else 'false'}")
            elif isinstance(v, (list, tuple)):
                lines.append(f"{k} = [{', '.join(repr(str(x)).replace(chr(39), chr(34)) for x in v)}]")
            else:
                lines.append(f"{k} = {v}")
        text = toml.read_text()
        for k in settings:
            text = "\n".join(ln for ln in text.split("\n") if not ln.startswith(f"{k} ="))
        toml.write_text(text.replace("[sync]\n", "[sync]\n" + "\n".join(lines) + "\n"))
        self.nd = NodeDir.open(self.data)


@dataclass
class Federation:
    base: Path
    names: tuple[str, ...]
    mqtt: str = ""
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        root = Ed25519PrivateKey.generate()
        keyfiles.write_private(self.base / "root" / "root.key", root)
        payload = mf.new_payload([ed25519_public_b64(root)], threshold=1, expires_s=int(time.time()) + 90 * 86_400)
        for n in self.names:
            port = free_port()
            nd = NodeDir.init(
                self.base / n,
                node_id=n,
                organisation=f"{n} (benchmark)",
                listen=f"127.0.0.1:{port}",
                mqtt_url=self.mqtt,
            )
            self.nodes[n] = Node(n, nd, port)
            payload = mf.add_node(
                payload, nd.node_info(), role="un" if n == "un" else "regional", scope=mf.parse_scope(SCOPES[n])
            )
        self.manifest = mf.sign(mf.unsigned(payload), root)
        for node in self.nodes.values():
            with node.nd.store() as s:
                s.install_manifest(self.manifest)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def start(self, *names: str) -> None:
        for n in names or self.names:
            self.nodes[n].launch()
        for n in names or self.names:
            wait_for(self.nodes[n].up, 60, f"node {n} to listen")

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


class CountingRelay:
    """A TCP relay 127.0.0.1:port → target port counting the bytes in both directions."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.up = 0  # client → server
        self.down = 0  # server → client
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CountingRelay:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            cw.close()
            return

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await r.read(65536):
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                w.close()

        await asyncio.gather(pump(cr, sw, True), pump(sr, cw, False))
