"""Editing a manifest: pure functions, payload dict in, payload dict out; signing (PROTOCOL.md §6)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import envelope as dsse
from pocsync.core import jsonc, opkinds
from pocsync.core.keys import ed25519_public_b64, ed25519_public_from_b64, root_keyid
from pocsync.core.manifest.model import ALL, MANIFEST_PAYLOAD, NODE_ID_RE, ROLES, STATE_RE, Manifest, format_time
from pocsync.core.manifest.parsing import from_payload
from pocsync.errors import ManifestError


def new_payload(
    roots: Iterable[str], *, threshold: int, expires_s: int, version: int = 1, features: Iterable[str] = ()
) -> dict[str, Any]:
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
        raise ManifestError(
            f"key {kid} is not a root key of manifest v{m.version}; it may still sign a transition", reason="not_a_root"
        )
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
    node: dict[str, Any] | None = p["nodes"].get(node_id)
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


def add_node(
    payload: dict[str, Any], info: dict[str, Any], *, role: str, scope: list[str] | str, organisation: str | None = None
) -> dict[str, Any]:
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


def restart_chain(
    payload: dict[str, Any], node_id: str, *, name: str, public: str, from_seq: int, prev: str | None
) -> dict[str, Any]:
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
