"""The federation manifest: the trust root (PROTOCOL.md §6).

A manifest is a DSSE envelope (payloadType ``application/vnd.pocsync.manifest+json``)
whose payload lists the root keys, the signature threshold, the expiry and every
member node with its keys and scope.  It is signed by root keys; a threshold of
them is needed.

History is anchored to log positions, not clocks: every signing key is valid for
a range of its node's sequence numbers, a scope change takes effect at a stated
seq, removing a node freezes it at a stated seq, and a chain restart starts a new
segment of the node's chain at a stated seq.  Later versions keep that history, so
every node judges every change-set the same way whatever version it held when
the change-set arrived.

Transition rule (TUF-like): version N+1 is accepted only when signed by a
threshold of N's roots *and* a threshold of N+1's roots; versions never go back.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from pocsync.core import envelope as dsse
from pocsync.core import jsonc, opkinds
from pocsync.core.keys import (
    ed25519_public_b64,
    ed25519_public_from_b64,
    es256_public_from_jwk,
    root_keyid,
    x25519_public_from_b64,
)
from pocsync.errors import (
    KeyFileError,
    ManifestError,
    ManifestExpiredError,
    ManifestGapError,
    ManifestRollbackError,
    ManifestThresholdError,
    PocsyncError,
)

MANIFEST_PAYLOAD = "pocsync.manifest/v1"
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}\Z")
STATE_RE = re.compile(r"^[A-Z]{3}\Z")
ROLES = ("regional", "un")
EXPIRY_FMT = "%Y-%m-%dT%H:%M:%SZ"
ALL = "all"


def format_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(EXPIRY_FMT)


def parse_time(text: object, *, what: str = "expires") -> int:
    if not isinstance(text, str):
        raise ManifestError(f"{what} must be an RFC 3339 UTC time like 2027-01-31T00:00:00Z")
    try:
        dt = datetime.strptime(text, EXPIRY_FMT).replace(tzinfo=timezone.utc)
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
    token_keys: dict[str, dict]
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

    def signing_key(self, keyid: str, seq: int) -> Ed25519PublicKey | None:
        node_id, _, name = keyid.partition(":")
        node = self.nodes.get(node_id)
        return node.key_for(name, seq) if node else None

    def is_expired(self, now_s: int) -> bool:
        return now_s >= self.expires

    def expires_in(self, now_s: int) -> int:
        return self.expires - now_s

    def to_bytes(self) -> bytes:
        return self.envelope.to_bytes()


# --- parsing --------------------------------------------------------------------
def _int(v: object, what: str, *, minimum: int = 1, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise ManifestError(f"{what} must be an integer ≥ {minimum}")
    return v


def _str(v: object, what: str) -> str:
    if not isinstance(v, str) or not v:
        raise ManifestError(f"{what} must be a non-empty string")
    return v


def _node(node_id: str, raw: object) -> NodeInfo:
    w = f"nodes.{node_id}"
    if not NODE_ID_RE.match(node_id):
        raise ManifestError(f"node id {node_id!r} must match {NODE_ID_RE.pattern}")
    if not isinstance(raw, dict):
        raise ManifestError(f"{w} must be an object")
    role = raw.get("role")
    if role not in ROLES:
        raise ManifestError(f"{w}.role must be one of {ROLES}")
    keys = []
    for i, k in enumerate(raw.get("signing_keys") or []):
        if not isinstance(k, dict):
            raise ManifestError(f"{w}.signing_keys[{i}] must be an object")
        name = k.get("name")
        if not isinstance(name, str) or not KEY_NAME_RE.match(name):
            raise ManifestError(f"{w}.signing_keys[{i}].name must match {KEY_NAME_RE.pattern}")
        try:
            pub = ed25519_public_from_b64(k.get("public"))
        except KeyFileError as exc:
            raise ManifestError(f"{w}.signing_keys[{i}]: {exc.message}") from None
        frm = _int(k.get("from_seq"), f"{w}.signing_keys[{i}].from_seq")
        until = _int(k.get("until_seq"), f"{w}.signing_keys[{i}].until_seq", optional=True)
        if until is not None and until < frm:  # type: ignore[operator]
            raise ManifestError(f"{w}.signing_keys[{i}]: until_seq is before from_seq")
        keys.append(SigningKey(name, pub, frm, until))  # type: ignore[arg-type]
    if not keys:
        raise ManifestError(f"{w} has no signing key")
    if len({k.name for k in keys}) != len(keys):
        raise ManifestError(f"{w}.signing_keys names must be unique")
    try:
        sealing = x25519_public_from_b64(raw.get("sealing_key"))
    except KeyFileError as exc:
        raise ManifestError(f"{w}.sealing_key: {exc.message}") from None
    token_keys: dict[str, dict] = {}
    for i, jwk in enumerate(raw.get("token_keys") or []):
        try:
            es256_public_from_jwk(jwk)
        except KeyFileError as exc:
            raise ManifestError(f"{w}.token_keys[{i}]: {exc.message}") from None
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ManifestError(f"{w}.token_keys[{i}] needs a kid")
        token_keys[kid] = jwk
    scope = []
    last = 0
    for i, s in enumerate(raw.get("scope") or []):
        if not isinstance(s, dict):
            raise ManifestError(f"{w}.scope[{i}] must be an object")
        frm = _int(s.get("from_seq"), f"{w}.scope[{i}].from_seq")
        if frm <= last:  # type: ignore[operator]
            raise ManifestError(f"{w}.scope steps must have increasing from_seq")
        last = frm  # type: ignore[assignment]
        states = s.get("states")
        if states == ALL:
            scope.append(ScopeStep(frm, None))  # type: ignore[arg-type]
            continue
        if not isinstance(states, list) or not all(isinstance(x, str) and STATE_RE.match(x) for x in states):
            raise ManifestError(f"{w}.scope[{i}].states must be 'all' or a list of ISO 3166-1 alpha-3 codes")
        scope.append(ScopeStep(frm, frozenset(states)))  # type: ignore[arg-type]
    restarts = []
    for i, r in enumerate(raw.get("restarts") or []):
        if not isinstance(r, dict):
            raise ManifestError(f"{w}.restarts[{i}] must be an object")
        seq = _int(r.get("seq"), f"{w}.restarts[{i}].seq", minimum=2)
        prev = r.get("prev")
        if prev is not None and not (isinstance(prev, str) and re.match(r"^sha256:[0-9a-f]{64}\Z", prev)):
            raise ManifestError(f"{w}.restarts[{i}].prev must be null or sha256:<hex>")
        restarts.append(Restart(seq, prev))  # type: ignore[arg-type]
    if len({r.seq for r in restarts}) != len(restarts):
        raise ManifestError(f"{w}.restarts must have distinct seqs")
    endpoints = raw.get("endpoints") or {}
    if not isinstance(endpoints, dict) or not all(isinstance(v, str) for v in endpoints.values()):
        raise ManifestError(f"{w}.endpoints must map names to URLs")
    return NodeInfo(
        id=node_id,
        organisation=_str(raw.get("organisation"), f"{w}.organisation"),
        role=role,
        signing_keys=tuple(keys),
        sealing_key=sealing,
        token_keys=token_keys,
        scope=tuple(scope),
        removed_at_seq=_int(raw.get("removed_at_seq"), f"{w}.removed_at_seq", minimum=0, optional=True),
        restarts=tuple(sorted(restarts, key=lambda r: r.seq)),
        endpoints=dict(endpoints),
    )


def from_payload(payload: dict[str, Any], env: dsse.Envelope) -> Manifest:
    if not isinstance(payload, dict) or payload.get("type") != MANIFEST_PAYLOAD:
        raise ManifestError(f"manifest payload type must be {MANIFEST_PAYLOAD!r}")
    version = _int(payload.get("version"), "version")
    threshold = _int(payload.get("threshold"), "threshold")
    roots: dict[str, Ed25519PublicKey] = {}
    for name in ("roots",):
        if not isinstance(payload.get(name) or [], list):
            raise ManifestError(f"{name} must be a list")
    for i, r in enumerate(payload.get("roots") or []):
        if not isinstance(r, dict):
            raise ManifestError(f"roots[{i}] must be an object")
        try:
            pub = ed25519_public_from_b64(r.get("public"))
        except KeyFileError as exc:
            raise ManifestError(f"roots[{i}]: {exc.message}") from None
        kid = root_keyid(r["public"])
        if r.get("keyid") != kid:
            raise ManifestError(f"roots[{i}].keyid must be {kid} (derived from the key)")
        roots[kid] = pub
    if not roots:
        raise ManifestError("manifest has no root keys")
    if threshold > len(roots):  # type: ignore[operator]
        raise ManifestError(f"threshold {threshold} exceeds the {len(roots)} root keys")
    nodes_raw = payload.get("nodes") or {}
    if not isinstance(nodes_raw, dict):
        raise ManifestError("nodes must be an object")
    nodes = {nid: _node(nid, raw) for nid, raw in nodes_raw.items()}
    features = opkinds.parse_features(payload.get("features"))
    return Manifest(
        version=version,  # type: ignore[arg-type]
        expires=parse_time(payload.get("expires")),
        threshold=threshold,  # type: ignore[arg-type]
        roots=roots,
        nodes=nodes,
        payload=payload,
        envelope=env,
        features=features,
        policy=opkinds.parse_policy(payload.get("policy"), features),
    )


def parse(data: bytes, *, max_bytes: int = 1 << 20) -> Manifest:
    """Parse a manifest envelope.  Makes no trust decision: see :func:`check_install`."""
    try:
        env = dsse.parse(data, max_bytes=max_bytes, payload_type=dsse.MANIFEST_TYPE)
        payload = jsonc.loads(env.payload)
    except PocsyncError as exc:
        raise ManifestError(f"not a manifest: {exc.message}", reason=exc.reason) from None
    try:
        return from_payload(payload, env)
    except PocsyncError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        # Total parser (issue 11): a structure the checks above did not foresee is a documented error.
        raise ManifestError(f"manifest structure is malformed ({type(exc).__name__})") from None


def signed_by(m: Manifest, roots: dict[str, Ed25519PublicKey]) -> set[str]:
    return dsse.verified_keyids(m.envelope, roots)


def check_self_signed(m: Manifest) -> None:
    good = signed_by(m, m.roots)
    if len(good) < m.threshold:
        raise ManifestThresholdError(
            f"manifest v{m.version} carries {len(good)} valid root signature(s); its threshold is {m.threshold}"
        )


def check_install(current: Manifest | None, new: Manifest, *, now_s: int,
                  supported: Iterable[str] | None = None) -> None:
    """Raise unless ``new`` may replace ``current`` (PROTOCOL.md §6 Installing).

    ``supported`` are the features of this software (default :data:`opkinds.FEATURES`): a
    manifest naming any other feature is refused (``unsupported_feature``), so that no node
    runs a federation whose rules it does not implement.
    """
    lacking = sorted(new.features - set(opkinds.FEATURES if supported is None else supported))
    if lacking:
        raise ManifestError(f"manifest v{new.version} enables feature(s) {', '.join(lacking)} that this pocsync "
                            f"does not implement; upgrade pocsync before installing it",
                            reason="unsupported_feature", features=lacking)
    if new.is_expired(now_s):
        raise ManifestExpiredError(f"manifest v{new.version} expired at {format_time(new.expires)}")
    if current is not None:
        if new.version <= current.version:
            if new.version == current.version and new.envelope.payload == current.envelope.payload:
                raise ManifestRollbackError(f"manifest v{new.version} is already installed", reason="already_installed")
            raise ManifestRollbackError(
                f"manifest v{new.version} is not newer than the installed v{current.version}; versions never go back"
            )
        if new.version != current.version + 1:
            raise ManifestGapError(
                f"manifest v{new.version} skips versions: install v{current.version + 1} … v{new.version - 1} first",
                missing=list(range(current.version + 1, new.version)),
            )
        good_old = signed_by(new, current.roots)
        if len(good_old) < current.threshold:
            raise ManifestThresholdError(
                f"manifest v{new.version} has {len(good_old)} valid signature(s) by the roots of v{current.version};"
                f" {current.threshold} needed"
            )
    check_self_signed(new)


# --- editing (pure: payload dict in, payload dict out) ----------------------------
def new_payload(roots: Iterable[str], *, threshold: int, expires_s: int, version: int = 1,
                features: Iterable[str] = ()) -> dict[str, Any]:
    roots = list(dict.fromkeys(roots))
    p: dict[str, Any] = {
        "type": MANIFEST_PAYLOAD,
        "version": version,
        "expires": format_time(expires_s),
        "threshold": threshold,
        "roots": [{"keyid": root_keyid(r), "public": r} for r in roots],
        "nodes": {},
    }
    if features:
        p["features"] = sorted(set(features))
    return p


def set_features(payload: dict[str, Any], features: Iterable[str]) -> dict[str, Any]:
    """Replace the ``features`` list (sorted, distinct); policy of a dropped feature is dropped too."""
    p = _edit(payload)
    names = sorted(set(features))
    bad = [f for f in names if not opkinds.FEATURE_RE.match(f)]
    if bad:
        raise ManifestError(f"feature names must match {opkinds.FEATURE_RE.pattern}: {bad}", reason="bad_feature")
    if names:
        p["features"] = names
    else:
        p.pop("features", None)
    policy = {k: v for k, v in (p.get("policy") or {}).items() if k in names}
    if policy:
        p["policy"] = policy
    else:
        p.pop("policy", None)
    unsigned(p)
    return p


def set_policy(payload: dict[str, Any], feature: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """Set (or with ``None`` remove) the federation policy of one listed feature."""
    p = _edit(payload)
    policy = dict(p.get("policy") or {})
    if value is None:
        policy.pop(feature, None)
    else:
        policy[feature] = value
    if policy:
        p["policy"] = policy
    else:
        p.pop("policy", None)
    unsigned(p)
    return p


def unsigned(payload: dict[str, Any]) -> Manifest:
    """Validate an edited payload and wrap it in an envelope with no signatures."""
    data = jsonc.dumps(payload)
    env = dsse.Envelope(dsse.MANIFEST_TYPE, data, ())
    return from_payload(jsonc.loads(data), env)


def sign(m: Manifest, key: Ed25519PrivateKey) -> Manifest:
    pub = ed25519_public_b64(key)
    kid = root_keyid(pub)
    if kid not in m.roots:
        raise ManifestError(f"key {kid} is not a root key of manifest v{m.version}; it may still sign a transition",
                            reason="not_a_root")
    return _with_env(m, m.envelope.with_signature(kid, key))


def sign_as_previous_root(m: Manifest, key: Ed25519PrivateKey) -> Manifest:
    """Sign with a key that is a root of the previous version only (root rotation)."""
    kid = root_keyid(ed25519_public_b64(key))
    return _with_env(m, m.envelope.with_signature(kid, key))


def _with_env(m: Manifest, env: dsse.Envelope) -> Manifest:
    return Manifest(m.version, m.expires, m.threshold, m.roots, m.nodes, m.payload, env, m.features, m.policy)


def _edit(payload: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(payload)


def _node_raw(p: dict[str, Any], node_id: str) -> dict[str, Any]:
    node = p["nodes"].get(node_id)
    if node is None:
        raise ManifestError(f"no node {node_id!r} in the manifest", reason="unknown_node")
    return node


def next_version(payload: dict[str, Any]) -> dict[str, Any]:
    p = _edit(payload)
    p["version"] = payload["version"] + 1
    return p


def set_expiry(payload: dict[str, Any], expires_s: int) -> dict[str, Any]:
    p = _edit(payload)
    p["expires"] = format_time(expires_s)
    return p


def parse_scope(text: str) -> list[str] | str:
    if text.strip().lower() == ALL:
        return ALL
    states = sorted({s.strip().upper() for s in text.split(",") if s.strip()})
    bad = [s for s in states if not STATE_RE.match(s)]
    if bad or not states:
        raise ManifestError(f"scope must be 'all' or ISO 3166-1 alpha-3 codes separated by commas; bad: {bad}")
    return states


def add_node(payload: dict[str, Any], info: dict[str, Any], *, role: str, scope: list[str] | str,
             organisation: str | None = None) -> dict[str, Any]:
    """Add a node from its ``pocsync node-info`` JSON."""
    p = _edit(payload)
    node_id = info.get("node")
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise ManifestError("node-info has no valid 'node' id")
    if node_id in p["nodes"]:
        raise ManifestError(f"node {node_id!r} is already in the manifest", reason="duplicate_node")
    if role not in ROLES:
        raise ManifestError(f"role must be one of {ROLES}")
    sk = info.get("signing_key") or {}
    p["nodes"][node_id] = {
        "organisation": organisation or info.get("organisation") or node_id,
        "role": role,
        "signing_keys": [{"name": sk.get("name"), "public": sk.get("public"), "from_seq": 1, "until_seq": None}],
        "sealing_key": info.get("sealing_key"),
        "token_keys": [info["token_key"]] if info.get("token_key") else [],
        "scope": [{"from_seq": 1, "states": scope}],
        "removed_at_seq": None,
        "restarts": [],
        "endpoints": info.get("endpoints") or {},
    }
    unsigned(p)  # validate
    return p


def rotate_key(payload: dict[str, Any], node_id: str, *, name: str, public: str, from_seq: int) -> dict[str, Any]:
    """New signing key valid from ``from_seq``; every older key stops at ``from_seq - 1``.

    A rotation may be retroactive (``from_seq`` at or below seqs already signed): the
    change-sets the old key signed beyond its new range lose their validity, and
    installing the manifest re-derives the view.
    """
    p = _edit(payload)
    node = _node_raw(p, node_id)
    if any(k["name"] == name for k in node["signing_keys"]):
        raise ManifestError(f"node {node_id!r} already has a key named {name!r}")
    ed25519_public_from_b64(public)
    _truncate_keys(node, from_seq)
    node["signing_keys"].append({"name": name, "public": public, "from_seq": from_seq, "until_seq": None})
    unsigned(p)
    return p


def _truncate_keys(node: dict[str, Any], from_seq: int) -> None:
    kept = []
    for k in node["signing_keys"]:
        if k["from_seq"] >= from_seq:
            continue  # a key that would only have started at or after the cut is dropped
        if k["until_seq"] is None or k["until_seq"] >= from_seq:
            k["until_seq"] = from_seq - 1
        kept.append(k)
    node["signing_keys"] = kept


def set_scope(payload: dict[str, Any], node_id: str, *, states: list[str] | str, from_seq: int) -> dict[str, Any]:
    p = _edit(payload)
    node = _node_raw(p, node_id)
    node["scope"] = [s for s in node["scope"] if s["from_seq"] < from_seq]
    node["scope"].append({"from_seq": from_seq, "states": states})
    unsigned(p)
    return p


def remove_node(payload: dict[str, Any], node_id: str, *, at_seq: int) -> dict[str, Any]:
    """Freeze ``node_id`` at ``at_seq`` (its last valid seq); it gets nothing sealed again."""
    p = _edit(payload)
    node = _node_raw(p, node_id)
    node["removed_at_seq"] = at_seq
    unsigned(p)
    return p


def restart_chain(payload: dict[str, Any], node_id: str, *, name: str, public: str, from_seq: int,
                  prev: str | None) -> dict[str, Any]:
    """Declare a chain restart: a new key whose segment begins at ``from_seq`` with ``prev``."""
    p = rotate_key(payload, node_id, name=name, public=public, from_seq=from_seq)
    node = _node_raw(p, node_id)
    if any(r["seq"] == from_seq for r in node["restarts"]):
        raise ManifestError(f"node {node_id!r} already restarts at seq {from_seq}")
    node["restarts"].append({"seq": from_seq, "prev": prev})
    node["removed_at_seq"] = None
    unsigned(p)
    return p


def add_root(payload: dict[str, Any], public: str) -> dict[str, Any]:
    p = _edit(payload)
    kid = root_keyid(public)
    if any(r["keyid"] == kid for r in p["roots"]):
        raise ManifestError(f"{kid} is already a root key")
    p["roots"].append({"keyid": kid, "public": public})
    unsigned(p)
    return p


def remove_root(payload: dict[str, Any], keyid_or_public: str) -> dict[str, Any]:
    p = _edit(payload)
    kid = keyid_or_public if keyid_or_public.startswith("root:") else root_keyid(keyid_or_public)
    left = [r for r in p["roots"] if r["keyid"] != kid]
    if len(left) == len(p["roots"]):
        raise ManifestError(f"{kid} is not a root key")
    p["roots"] = left
    unsigned(p)
    return p


def set_threshold(payload: dict[str, Any], threshold: int) -> dict[str, Any]:
    p = _edit(payload)
    p["threshold"] = threshold
    unsigned(p)
    return p
