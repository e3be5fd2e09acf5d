"""The running node's shared state: store worker, keys, manifest cache, counters, wake-up events."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync import clock
from pocsync.core import manifest as mf
from pocsync.core import seal
from pocsync.core.heads import HeadVector
from pocsync.core.hlc import next_hlc
from pocsync.core.replica import Outcome
from pocsync.errors import SigningRefused
from pocsync.nodedir import NodeDir
from pocsync.node.worker import StoreWorker
from pocsync.store import Store


def now_ms() -> int:
    return clock.now_ms()


@dataclass
class PeerStatus:
    url: str
    node: str | None = None
    last_pull_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    pulls: int = 0
    received: int = 0
    bytes_received: int = 0


@dataclass
class Runtime:
    nd: NodeDir
    worker: StoreWorker
    counters: Counter = field(default_factory=Counter)
    pull_now: asyncio.Event = field(default_factory=asyncio.Event)
    publish_now: asyncio.Event = field(default_factory=asyncio.Event)
    peers: dict[str, PeerStatus] = field(default_factory=dict)
    mqtt_connected: bool = False
    announced_heads: dict[str, Any] = field(default_factory=dict)  # node -> last HeadVector seen
    last_contact: dict[str, float] = field(default_factory=dict)   # node -> unix time of its last message
    online: dict[str, str] = field(default_factory=dict)            # node -> retained MQTT status
    started_at: float = field(default_factory=time.time)
    pull_durations: list[float] = field(default_factory=list)  # drained into the metrics histogram
    lag_history: deque = field(default_factory=deque)          # (unix time, {origin: lag}) for the last hour

    def contact(self, node: str, hv: Any = None) -> None:
        self.last_contact[node] = time.time()
        if hv is not None:
            self.announced_heads[node] = hv
    _manifest: mf.Manifest | None = None

    @property
    def me(self) -> str:
        return self.nd.node_id

    @property
    def cfg(self):  # noqa: ANN201
        return self.nd.config

    async def manifest(self) -> mf.Manifest:
        m = await self.worker.run(lambda s: s.require_manifest())
        self._manifest = m
        return m

    def signer(self, m: mf.Manifest) -> tuple[str, Ed25519PrivateKey]:
        """The node's open-ended signing key (for head vectors and peer requests)."""
        node = m.node(self.me)
        if node is None or node.removed:
            raise SigningRefused(f"{self.me} is not a member of manifest v{m.version}")
        open_keys = [k for k in node.signing_keys if k.until_seq is None]
        if not open_keys:
            raise SigningRefused(f"manifest v{m.version} gives {self.me} no current signing key")
        k = max(open_keys, key=lambda k: k.from_seq)
        return f"{self.me}:{k.name}", self.nd.signing_key(k.name)

    async def receive(self, data: bytes, source: str) -> Outcome:
        out = await self.worker.run(lambda s: s.receive(data, source=source))
        for o in [out, *out.also_accepted]:
            self.counters[f"changesets_{o.status}"] += 1
            if o.status in ("quarantined", "parked"):
                self.counters[f"changesets_{o.status}:{o.reason}"] += 1
            if o.status == "accepted" and o.origin != self.me:
                self.publish_now.set()  # announce the new head
        if out.status == "parked" and out.reason in ("gap", "manifest_unknown"):
            self.pull_now.set()
        if out.status == "equivocation":
            self.counters["equivocations"] += 1
        return out

    async def head_vector(self) -> bytes:
        m = await self.manifest()
        summary: dict[str, Any] = await self.worker.run(Store.summary)
        keyid, key = self.signer(m)
        hv = HeadVector(node=self.me, hlc=next_hlc(summary["max_hlc"], now_ms()), manifest=m.version,
                        heads=summary["heads"], digest=summary["digest"], refused=summary["refused"],
                        quarantined=summary["quarantined"], equivocations=tuple(summary["equivocations"]))
        return hv.sign(keyid=keyid, key=key)

    def seal_for(self, m: mf.Manifest, plaintext: bytes, *, context: str, to: list[str] | None = None) -> bytes:
        members = m.members()
        names = to if to is not None else [n for n in members if n != self.me]
        recipients = {n: members[n].sealing_key for n in names if n in members}
        return seal.seal(plaintext, sender=self.me, manifest=m.version, context=context, recipients=recipients)

    def open(self, blob: bytes, *, context: str) -> seal.Opened:
        return seal.open_sealed(blob, me=self.me, key=self.nd.sealing_key(), context=context,
                                max_bytes=self.cfg.sync.max_batch_bytes + 1024 * 1024)
