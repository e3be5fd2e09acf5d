"""Parsing a manifest envelope into its model (PROTOCOL.md §6).  A total parser; makes no trust decision."""

from __future__ import annotations

import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pocsync.core import envelope as dsse
from pocsync.core import jsonc, opkinds
from pocsync.core.keys import ed25519_public_from_b64, es256_public_from_jwk, root_keyid, x25519_public_from_b64
from pocsync.core.manifest.model import (
    ALL,
    KEY_NAME_RE,
    MANIFEST_PAYLOAD,
    NODE_ID_RE,
    ROLES,
    STATE_RE,
    Manifest,
    NodeInfo,
    Restart,
    ScopeStep,
    SigningKey,
    parse_time,
)
from pocsync.errors import KeyFileError, ManifestError, PocsyncError


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


def _need(v: object, what: str, *, minimum: int = 1) -> int:
    """A required integer ≥ ``minimum``."""
    n = _int(v, what, minimum=minimum)
    assert n is not None  # _int raises for a missing required value
    return n


def _signing_keys(w: str, raw: dict[str, Any]) -> tuple[SigningKey, ...]:
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
        frm = _need(k.get("from_seq"), f"{w}.signing_keys[{i}].from_seq")
        until = _int(k.get("until_seq"), f"{w}.signing_keys[{i}].until_seq", optional=True)
        if until is not None and until < frm:
            raise ManifestError(f"{w}.signing_keys[{i}]: until_seq is before from_seq")
        keys.append(SigningKey(name, pub, frm, until))
    if not keys:
        raise ManifestError(f"{w} has no signing key")
    if len({k.name for k in keys}) != len(keys):
        raise ManifestError(f"{w}.signing_keys names must be unique")
    return tuple(keys)


def _token_keys(w: str, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    token_keys: dict[str, dict[str, Any]] = {}
    for i, jwk in enumerate(raw.get("token_keys") or []):
        try:
            es256_public_from_jwk(jwk)
        except KeyFileError as exc:
            raise ManifestError(f"{w}.token_keys[{i}]: {exc.message}") from None
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ManifestError(f"{w}.token_keys[{i}] needs a kid")
        token_keys[kid] = jwk
    return token_keys


def _scope(w: str, raw: dict[str, Any]) -> tuple[ScopeStep, ...]:
    scope = []
    last = 0
    for i, s in enumerate(raw.get("scope") or []):
        if not isinstance(s, dict):
            raise ManifestError(f"{w}.scope[{i}] must be an object")
        frm = _need(s.get("from_seq"), f"{w}.scope[{i}].from_seq")
        if frm <= last:
            raise ManifestError(f"{w}.scope steps must have increasing from_seq")
        last = frm
        states = s.get("states")
        if states == ALL:
            scope.append(ScopeStep(frm, None))
            continue
        if not isinstance(states, list) or not all(isinstance(x, str) and STATE_RE.match(x) for x in states):
            raise ManifestError(f"{w}.scope[{i}].states must be 'all' or a list of ISO 3166-1 alpha-3 codes")
        scope.append(ScopeStep(frm, frozenset(states)))
    return tuple(scope)


def _restarts(w: str, raw: dict[str, Any]) -> tuple[Restart, ...]:
    restarts = []
    for i, r in enumerate(raw.get("restarts") or []):
        if not isinstance(r, dict):
            raise ManifestError(f"{w}.restarts[{i}] must be an object")
        seq = _need(r.get("seq"), f"{w}.restarts[{i}].seq", minimum=2)
        prev = r.get("prev")
        if prev is not None and not (isinstance(prev, str) and re.match(r"^sha256:[0-9a-f]{64}\Z", prev)):
            raise ManifestError(f"{w}.restarts[{i}].prev must be null or sha256:<hex>")
        restarts.append(Restart(seq, prev))
    if len({r.seq for r in restarts}) != len(restarts):
        raise ManifestError(f"{w}.restarts must have distinct seqs")
    return tuple(sorted(restarts, key=lambda r: r.seq))


def _node(node_id: str, raw: object) -> NodeInfo:
    w = f"nodes.{node_id}"
    if not NODE_ID_RE.match(node_id):
        raise ManifestError(f"node id {node_id!r} must match {NODE_ID_RE.pattern}")
    if not isinstance(raw, dict):
        raise ManifestError(f"{w} must be an object")
    role = raw.get("role")
    if role not in ROLES:
        raise ManifestError(f"{w}.role must be one of {ROLES}")
    keys = _signing_keys(w, raw)
    try:
        sealing = x25519_public_from_b64(raw.get("sealing_key"))
    except KeyFileError as exc:
        raise ManifestError(f"{w}.sealing_key: {exc.message}") from None
    token_keys = _token_keys(w, raw)
    scope = _scope(w, raw)
    restarts = _restarts(w, raw)
    endpoints = raw.get("endpoints") or {}
    if not isinstance(endpoints, dict) or not all(isinstance(v, str) for v in endpoints.values()):
        raise ManifestError(f"{w}.endpoints must map names to URLs")
    return NodeInfo(
        id=node_id,
        organisation=_str(raw.get("organisation"), f"{w}.organisation"),
        role=role,
        signing_keys=keys,
        sealing_key=sealing,
        token_keys=token_keys,
        scope=scope,
        removed_at_seq=_int(raw.get("removed_at_seq"), f"{w}.removed_at_seq", minimum=0, optional=True),
        restarts=restarts,
        endpoints=dict(endpoints),
    )


def from_payload(payload: dict[str, Any], env: dsse.Envelope) -> Manifest:
    if not isinstance(payload, dict) or payload.get("type") != MANIFEST_PAYLOAD:
        raise ManifestError(f"manifest payload type must be {MANIFEST_PAYLOAD!r}")
    version = _need(payload.get("version"), "version")
    threshold = _need(payload.get("threshold"), "threshold")
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
    if threshold > len(roots):
        raise ManifestError(f"threshold {threshold} exceeds the {len(roots)} root keys")
    nodes_raw = payload.get("nodes") or {}
    if not isinstance(nodes_raw, dict):
        raise ManifestError("nodes must be an object")
    nodes = {nid: _node(nid, raw) for nid, raw in nodes_raw.items()}
    features = opkinds.parse_features(payload.get("features"))
    return Manifest(
        version=version,
        expires=parse_time(payload.get("expires")),
        threshold=threshold,
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
