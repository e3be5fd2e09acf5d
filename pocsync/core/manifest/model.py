"""The manifest's model: nodes, their keys, scope and chain segments (PROTOCOL.md §6).  Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from pocsync.core import envelope as dsse
from pocsync.errors import ManifestError

MANIFEST_PAYLOAD = "pocsync.manifest/v1"
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}\Z")
STATE_RE = re.compile(r"^[A-Z]{3}\Z")
ROLES = ("regional", "un")
EXPIRY_FMT = "%Y-%m-%dT%H:%M:%SZ"
ALL = "all"


def format_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(EXPIRY_FMT)


def parse_time(text: object, *, what: str = "expires") -> int:
    if not isinstance(text, str):
        raise ManifestError(f"{what} must be an RFC 3339 UTC time like 2027-01-31T00:00:00Z")
    try:
        dt = datetime.strptime(text, EXPIRY_FMT).replace(tzinfo=UTC)
    except ValueError:
        raise ManifestError(f"{what} {text!r} is not of the form 2027-01-31T00:00:00Z") from None
    return int(dt.timestamp())


@dataclass(frozen=True)
class SigningKey:
    name: str
    public: Ed25519PublicKey
    from_seq: int
    until_seq: int | None

    def covers(self, seq: int) -> bool:
        return self.from_seq <= seq and (self.until_seq is None or seq <= self.until_seq)


@dataclass(frozen=True)
class ScopeStep:
    from_seq: int
    states: frozenset[str] | None  # None means "all"


@dataclass(frozen=True)
class Restart:
    seq: int
    prev: str | None


@dataclass(frozen=True)
class NodeInfo:
    id: str
    organisation: str
    role: str
    signing_keys: tuple[SigningKey, ...]
    sealing_key: X25519PublicKey
    token_keys: dict[str, dict[str, Any]]
    scope: tuple[ScopeStep, ...]
    removed_at_seq: int | None
    restarts: tuple[Restart, ...]
    endpoints: dict[str, str]

    @property
    def removed(self) -> bool:
        return self.removed_at_seq is not None

    def key_for(self, name: str, seq: int) -> Ed25519PublicKey | None:
        """The signing key ``name`` if it is valid at ``seq`` (and the node not frozen before)."""
        if self.removed_at_seq is not None and seq > self.removed_at_seq:
            return None
        for k in self.signing_keys:
            if k.name == name and k.covers(seq):
                return k.public
        return None

    def key_named(self, name: str) -> SigningKey | None:
        for k in self.signing_keys:
            if k.name == name:
                return k
        return None

    def current_key(self, seq: int) -> SigningKey | None:
        """The key this node should sign ``seq`` with (the newest one covering it)."""
        if self.removed_at_seq is not None and seq > self.removed_at_seq:
            return None
        good = [k for k in self.signing_keys if k.covers(seq)]
        return max(good, key=lambda k: k.from_seq) if good else None

    def scope_at(self, seq: int) -> frozenset[str] | None:
        """States in scope at ``seq`` (``None`` = all States); empty set before the first step."""
        current: frozenset[str] | None = frozenset()
        for step in self.scope:
            if step.from_seq <= seq:
                current = step.states
        return current

    def covers(self, state: str, seq: int) -> bool:
        scope = self.scope_at(seq)
        return scope is None or state in scope

    def segment(self, seq: int) -> Restart:
        """The chain segment holding ``seq``: (first seq, declared prev) — ``Restart(1, None)`` by default."""
        seg = Restart(1, None)
        for r in self.restarts:
            if r.seq <= seq and r.seq >= seg.seq:
                seg = r
        return seg


@dataclass(frozen=True)
class Manifest:
    version: int
    expires: int
    threshold: int
    roots: dict[str, Ed25519PublicKey]
    nodes: dict[str, NodeInfo]
    payload: dict[str, Any] = field(repr=False)
    envelope: dsse.Envelope = field(repr=False)
    features: frozenset[str] = frozenset()
    policy: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        from hashlib import sha256

        return "sha256:" + sha256(self.envelope.payload).hexdigest()

    def node(self, node_id: str) -> NodeInfo | None:
        return self.nodes.get(node_id)

    def members(self) -> dict[str, NodeInfo]:
        """Nodes that still receive sealed traffic (not removed)."""
        return {k: v for k, v in self.nodes.items() if not v.removed}

    def is_expired(self, now_s: int) -> bool:
        return now_s >= self.expires

    def to_bytes(self) -> bytes:
        return self.envelope.to_bytes()
