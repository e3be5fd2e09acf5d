"""The running node's shared state: store worker, keys, manifest cache, counters, wake-up events.

It also keeps what this node knows of every other node (:class:`NodeContact`): the last successful
contact over any transport, the first failure since, the retained MQTT status and the last head
vector announced — from which ``health`` derives online / offline since / never seen, and judges
convergence on heads and fresh digests.  Sync events (peer up and down, change-sets received, manifests
installed) are logged through :mod:`pocsync.live.events`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync import clock
from pocsync.core import heads as headsmod
from pocsync.core import manifest as mf
from pocsync.core import seal
from pocsync.core.heads import HeadVector
from pocsync.core.hlc import HLC, next_hlc
from pocsync.core.opkinds import unsupported
from pocsync.core.replica import Outcome
from pocsync.errors import ManifestError, SigningRefused
from pocsync.folder.config import Config
from pocsync.folder.nodedir import NodeDir
from pocsync.live.events import event as event
from pocsync.live.events import log as log
from pocsync.live.events import outcome_events
from pocsync.live.readcache import StoreWatch
from pocsync.live.worker import StoreWorker
from pocsync.store import Store

MQTT_QUIET_SECONDS = 1.0  # a pull waits until the broker has delivered nothing for this long …
MQTT_SETTLE_MAX_SECONDS = 10.0  # … but never longer than this


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
    batch: int = 0  # current batch size asked of this peer (halved after a failed batch)
    failures: int = 0  # consecutive failed pulls (drives the retry backoff)
    retry_at: float = 0.0  # monotonic time before which this peer is not pulled again


@dataclass
class NodeContact:
    """What this node knows of another node, over every transport."""

    last_ok: float | None = None  # unix time of the last successful exchange (any transport)
    via: str = ""  # transport of that exchange
    down_since: float | None = None  # first failure after last_ok (None while reachable)
    last_error: str | None = None
    last_error_at: float | None = None
    mqtt: str | None = None  # retained MQTT status ('online' / 'offline')
    mqtt_at: float | None = None
    hv: HeadVector | None = None  # last head vector it announced
    hv_at: float | None = None  # when it reached this node (its hlc's time if older)
    hv_via: str = ""


@dataclass
class Runtime:
    nd: NodeDir
    worker: StoreWorker
    counters: Counter[str] = field(default_factory=Counter)
    pull_now: asyncio.Event = field(default_factory=asyncio.Event)  # a full pull round from every peer
    #: head vectors announced by a poke that show this node behind, by node: fetched from that node alone
    announced: dict[str, HeadVector] = field(default_factory=dict)
    fetch_now: asyncio.Event = field(default_factory=asyncio.Event)
    publish_now: asyncio.Event = field(default_factory=asyncio.Event)
    peers: dict[str, PeerStatus] = field(default_factory=dict)
    mqtt_connected: bool = False
    mqtt_connected_at: float | None = None  # monotonic
    last_mqtt_changeset: float = 0.0  # monotonic time the broker last delivered a change-set
    contacts: dict[str, NodeContact] = field(default_factory=dict)
    url_nodes: dict[str, str] = field(default_factory=dict)  # peer URL -> node id (manifest endpoints)
    started_at: float = field(default_factory=time.time)
    pull_durations: list[float] = field(default_factory=list)  # drained into the metrics histogram
    #: (unix time, {origin: lag}) for the last hour
    lag_history: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)
    #: the newest manifest version refused because it enables features this software lacks (§8.3),
    #: shown in /v1/health until a version at least as new is installed
    manifest_refused: dict[str, Any] | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # [[sources]] status (node.source_loop)
    checks: dict[str, Any] | None = None  # communication-check state (live.actions.checks_status)
    _manifest: mf.Manifest | None = None
    # issue 13: the manifest and the store summary (heads, digest, counts) are re-read only after a commit
    # by any process (the store's data_version changed), not on every head vector, poke or publish round
    _watch: StoreWatch | None = None
    _manifest_gen: int | None = None
    _summary: dict[str, Any] | None = None
    _summary_gen: int | None = None

    def _store_version(self) -> int:
        if self._watch is None:
            path: Path | None = getattr(self.cfg, "store_path", None)
            if path is None:  # no store file (a test double): never cached
                return -time.monotonic_ns()
            self._watch = StoreWatch(path)
        return self._watch.version()

    async def summary(self) -> dict[str, Any]:
        """``Store.summary()``, computed at most once per store version."""
        v = self._store_version()
        if self._summary is not None and self._summary_gen == v:
            return self._summary
        out = await self.worker.run(Store.summary)
        self._summary, self._summary_gen = out, v  # read before computing: a commit meanwhile shows next time
        return out

    @property
    def me(self) -> str:
        return self.nd.node_id

    @property
    def cfg(self) -> Config:
        return self.nd.config

    # --- what this node knows of the others ------------------------------------------------------
    @property
    def announced_heads(self) -> dict[str, HeadVector]:
        return {n: c.hv for n, c in self.contacts.items() if c.hv is not None}

    @property
    def last_contact(self) -> dict[str, float]:
        return {n: c.last_ok for n, c in self.contacts.items() if c.last_ok is not None}

    def _c(self, node: str) -> NodeContact:
        return self.contacts.setdefault(node, NodeContact())

    def online_window(self) -> float:
        """Without a fresher sign, a node last heard from longer ago than this is offline."""
        return 3.0 * self.cfg.sync.pull_interval_seconds + 10

    def node_state(self, node: str, now: float | None = None) -> dict[str, Any]:
        """``online`` / ``offline`` (since, last error) / ``never seen``, from the last contact."""
        now = time.time() if now is None else now
        c = self.contacts.get(node, NodeContact())
        out: dict[str, Any] = {
            "state": "never seen",
            "since": None,
            "last_seen": c.last_ok,
            "via": c.via or None,
            "last_error": c.last_error,
            "last_error_at": c.last_error_at,
            "mqtt": c.mqtt,
        }
        if c.last_ok is None and c.mqtt != "online":
            if c.mqtt == "offline":  # the broker's retained status: known, and offline (since unknown)
                out["state"] = "offline"
            return out
        if c.down_since is not None:
            out.update(state="offline", since=c.down_since)
        elif c.mqtt == "offline" and (c.last_ok is None or (c.mqtt_at or 0) >= c.last_ok):
            out.update(state="offline", since=c.mqtt_at)
        elif c.mqtt == "online" and self.mqtt_connected:
            out.update(state="online")
        elif c.last_ok is not None and now - c.last_ok > self.online_window():
            out.update(state="offline", since=c.last_ok)
        else:
            out.update(state="online")
        return out

    def contact(self, node: str, hv: HeadVector | None = None, *, via: str = "") -> None:
        """A successful exchange with ``node`` (a pull, a poke, a signed request, an MQTT message)."""
        if node == self.me:
            return
        c = self._c(node)
        was_down = c.down_since is not None or c.last_ok is None
        c.last_ok, c.down_since = time.time(), None
        c.via = via or c.via
        if was_down:
            event("peer_up", "peer %s is up (via %s)", node, c.via or "?", node=node, via=c.via)
        if hv is not None:
            self.note_head(hv, via=via)

    def contact_failed(self, node: str, error: str) -> None:
        if node == self.me:
            return
        c = self._c(node)
        c.last_error, c.last_error_at = error, time.time()
        if c.down_since is None:
            c.down_since = c.last_error_at
            event("peer_down", "peer %s is down: %s", node, error, node=node, error=error)

    def mqtt_status(self, node: str, payload: bytes) -> None:
        """The retained ``pocsync/v1/status/<node>`` message."""
        if node == self.me:
            return
        status = payload.decode("ascii", "replace")[:16]
        c = self._c(node)
        if status != c.mqtt:
            if status == "offline" and c.mqtt is not None:
                event("peer_down", "peer %s is offline (MQTT status)", node, node=node, via="mqtt")
            elif status == "online" and c.mqtt is not None:
                event("peer_up", "peer %s is online (MQTT status)", node, node=node, via="mqtt")
        c.mqtt, c.mqtt_at = status, time.time()
        if status == "online":  # the broker holds a live session for it: a contact
            c.last_ok, c.down_since, c.via = c.mqtt_at, None, c.via or "mqtt"

    def note_head(self, hv: HeadVector, *, via: str) -> None:
        """Record an announced head vector (never replacing a newer one by an older one)."""
        c = self._c(hv.node)
        now = time.time()
        # an hlc more than a minute ahead of our clock would otherwise pin the announcement for good
        pinned = c.hv is not None and HLC.parse(c.hv.hlc).ms / 1000 > now + 60
        if c.hv is None or hv.hlc >= c.hv.hlc or pinned:  # its age: since it reached us, or since its hlc if older
            c.hv, c.hv_at, c.hv_via = hv, min(now, HLC.parse(hv.hlc).ms / 1000), via

    async def note_confirmation(self, hv: HeadVector) -> None:
        """A peer's verified head vector confirms (or claims) this node's own head: for the signing guard
        (``Store.note_announced_own``; ADR 19).  One dated in the future confirms nothing (it would stay
        "fresh" for the CLI's guard)."""
        signed_ms: int | None = HLC.parse(hv.hlc).ms
        if signed_ms is not None and signed_ms > now_ms() + 60_000:
            signed_ms = None
        await self.worker.run(
            lambda s: s.note_announced_own(hv.heads.get(self.me, (0, ""))[0], hv.node, signed_ms=signed_ms)
        )

    async def on_head_vector(self, hv: HeadVector, *, via: str) -> bool:
        """A head vector announced by a peer (MQTT or poke): record it; True when a pull is needed."""
        # A signed head vector proves its node was up at its hlc, not now: an old one (a retained MQTT
        # message, a replay) is recorded but is no contact.
        if HLC.parse(hv.hlc).ms / 1000 >= time.time() - self.online_window():
            self.contact(hv.node, hv, via=via)
        else:
            self.note_head(hv, via=via)
        summary = await self.summary()
        await self.note_confirmation(hv)
        m = await self.manifest()
        # only a member's chain can be pulled: heads of origins the manifest does not name prove nothing
        states = headsmod.compare(summary["heads"], headsmod.of_members(hv.heads, m.nodes))
        held = set(map(tuple, summary["equivocations"]))
        need = (
            any(s in ("behind", "fork") for s in states.values())
            or any(e not in held for e in hv.equivocations)
            or hv.manifest > m.version
        )
        if need and via == "poke" and hv.manifest <= m.version:
            self.announced[hv.node] = hv  # fetched from the poker alone, with this head vector (issue 13)
            self.fetch_now.set()
        elif need:
            self.pull_now.set()
        return need

    # --- MQTT delivery and pulls ----------------------------------------------------------------
    async def mqtt_settled(self) -> None:
        """When a broker is configured: wait (bounded) until it is connected and has delivered what it
        queued, so that a pull fetches only what the broker did not bring — each change-set once."""
        if not self.cfg.mqtt.url:
            return
        t0 = time.monotonic()
        while time.monotonic() - t0 < MQTT_SETTLE_MAX_SECONDS:
            if self.mqtt_connected:
                quiet_since = max(self.mqtt_connected_at or 0, self.last_mqtt_changeset)
                left = MQTT_QUIET_SECONDS - (time.monotonic() - quiet_since)
                if left <= 0:
                    return
                await asyncio.sleep(left)
            else:
                await asyncio.sleep(0.1)

    # --- manifest, keys ---------------------------------------------------------------------------
    async def manifest(self) -> mf.Manifest:
        v = self._store_version()
        if self._manifest is not None and self._manifest_gen == v:
            return self._manifest
        m: mf.Manifest = await self.worker.run(lambda s: s.require_manifest())
        self._manifest, self._manifest_gen = m, v
        return m

    async def install_manifest(self, m: mf.Manifest, *, via: str) -> None:
        try:
            await self.worker.run(lambda s: s.install_manifest(m))
        except ManifestError as exc:
            if exc.reason == "unsupported_feature":
                self.counters["manifest_refused:unsupported_feature"] += 1
                if self.manifest_refused is None or m.version >= self.manifest_refused["version"]:
                    self.manifest_refused = {
                        "version": m.version,
                        "reason": exc.reason,
                        "via": via,
                        "missing_features": unsupported(m.features),
                        "at": time.time(),
                    }
            raise
        if self.manifest_refused is not None and m.version >= self.manifest_refused["version"]:
            self.manifest_refused = None
        self.counters["manifests_installed"] += 1
        event("manifest_installed", "manifest v%d installed (via %s)", m.version, via, version=m.version, via=via)

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

    # --- receiving ----------------------------------------------------------------------------------
    async def receive(self, data: bytes, source: str) -> Outcome:
        if source == "mqtt":  # the broker is delivering: a pull waits until it is done
            self.last_mqtt_changeset = time.monotonic()
        out: Outcome = await self.worker.run(lambda s: s.receive(data, source=source))
        self._after(out, source)
        return out

    async def receive_many(self, envelopes: list[bytes], source: str) -> list[Outcome]:
        """Apply a pulled batch in one transaction (:meth:`Store.receive_many`)."""
        outs: list[Outcome] = await self.worker.run(lambda s: s.receive_many(envelopes, source=source))
        for out in outs:
            self._after(out, source)
        return outs

    def _after(self, out: Outcome, source: str) -> None:
        if source == "mqtt":
            self.last_mqtt_changeset = time.monotonic()
        for o in [out, *out.also_accepted]:
            self.counters[f"changesets_{o.status}"] += 1
            if o.status in ("quarantined", "parked"):
                self.counters[f"changesets_{o.status}:{o.reason}"] += 1
            if o.status == "accepted" and o.origin != self.me:
                self.publish_now.set()  # announce the new head
            if o.status == "duplicate":
                continue
            outcome_events(o, source)
        if out.status == "parked" and out.reason in ("gap", "manifest_unknown"):
            self.pull_now.set()
        if out.status == "equivocation":
            self.counters["equivocations"] += 1

    async def head_vector(self) -> bytes:
        m = await self.manifest()
        summary: dict[str, Any] = await self.summary()
        keyid, key = self.signer(m)
        hv = HeadVector(
            node=self.me,
            hlc=next_hlc(summary["max_hlc"], now_ms()),
            manifest=m.version,
            heads=summary["heads"],
            digest=summary["digest"],
            refused=summary["refused"],
            quarantined=summary["quarantined"],
            equivocations=tuple(summary["equivocations"]),
        )
        return hv.sign(keyid=keyid, key=key)

    def seal_for(self, m: mf.Manifest, plaintext: bytes, *, context: str, to: list[str] | None = None) -> bytes:
        members = m.members()
        names = to if to is not None else [n for n in members if n != self.me]
        recipients = {n: members[n].sealing_key for n in names if n in members}
        return seal.seal(plaintext, sender=self.me, manifest=m.version, context=context, recipients=recipients)

    def open(self, blob: bytes, *, context: str) -> seal.Opened:
        return seal.open_sealed(
            blob,
            me=self.me,
            key=self.nd.sealing_key(),
            context=context,
            max_bytes=2 * self.cfg.sync.max_batch_bytes + (1 << 20),
        )  # = http.sealed_batch_cap


#: The aiohttp application key under which a node's handlers find its Runtime.
RUNTIME = web.AppKey("runtime", Runtime)
