"""Signed peer requests (PROTOCOL.md §13.2).

A node's HTTP request to a peer carries ``Authorization: Pocsync <base64 DSSE envelope>`` whose
payload (payloadType ``application/vnd.pocsync.peer-request+json``) is the canonical JSON of
``{"method", "path" (with query), "body": sha256 of the body, "node": requester, "target": the
peer's node id, "ts": unix ms}``, signed by the requester's current signing key.  The peer checks
the key against its manifest, that it is the target, that the time is within ``max_age_ms`` of its
clock and that method, path and body match what it received.  Time is a parameter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pocsync.core import envelope as dsse
from pocsync.core import jsonc
from pocsync.core.manifest import Manifest
from pocsync.errors import PocsyncError, ProtocolError, SignatureError

PEER_REQUEST_TYPE = "application/vnd.pocsync.peer-request+json"
SCHEME = "Pocsync "
MAX_HEADER = 4096


@dataclass(frozen=True)
class PeerRequest:
    node: str
    target: str
    method: str
    path: str
    ts: int


def body_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def sign_request(
    *, node: str, keyid: str, key: Ed25519PrivateKey, target: str, method: str, path: str, body: bytes, now_ms: int
) -> str:
    """The value of the Authorization header."""
    payload = jsonc.dumps(
        {"method": method.upper(), "path": path, "body": body_hash(body), "node": node, "target": target, "ts": now_ms}
    )
    env = dsse.sign(PEER_REQUEST_TYPE, payload, keyid, key)
    return SCHEME + base64.b64encode(env.to_bytes()).decode("ascii")


def verify_request(
    header: str | None,
    *,
    manifest: Manifest,
    me: str,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    max_age_ms: int = 60_000,
) -> PeerRequest:
    """Raise SignatureError/ProtocolError unless the request is signed by a current member for us (total)."""
    try:
        return _verify_request(
            header, manifest=manifest, me=me, method=method, path=path, body=body, now_ms=now_ms, max_age_ms=max_age_ms
        )
    except PocsyncError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise ProtocolError(f"peer request is malformed ({type(exc).__name__})", reason="bad_request") from None


def _verify_request(
    header: str | None,
    *,
    manifest: Manifest,
    me: str,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    max_age_ms: int,
) -> PeerRequest:
    if not header or not header.startswith(SCHEME) or len(header) > MAX_HEADER:
        raise SignatureError("missing or malformed Pocsync authorization", reason="unsigned_request")
    try:
        raw = base64.b64decode(header[len(SCHEME) :], validate=True)  # no white space (§13.2, §4)
    except (binascii.Error, ValueError):
        raise SignatureError("authorization is not base64", reason="unsigned_request") from None
    env = dsse.parse(raw, max_bytes=MAX_HEADER, payload_type=PEER_REQUEST_TYPE)

    def lookup(keyid: str) -> Ed25519PublicKey | None:
        node_id, _, name = keyid.partition(":")
        node = manifest.node(node_id)
        if node is None or node.removed:
            return None
        k = node.key_named(name)
        return k.public if k is not None and k.until_seq is None else None

    keyid = dsse.verify_one(env, lookup)
    try:
        obj = jsonc.loads(env.payload)
    except PocsyncError as exc:
        raise ProtocolError(f"request payload: {exc.message}", reason="bad_request") from None
    if not isinstance(obj, dict):
        raise ProtocolError("request payload must be an object", reason="bad_request")
    node = keyid.partition(":")[0]
    if obj.get("node") != node:
        raise SignatureError("request signed by another node's key", reason="key_not_of_origin")
    if obj.get("target") != me:
        raise SignatureError(f"request is for {obj.get('target')!r}, not {me!r}", reason="wrong_target")
    if obj.get("method") != method.upper() or obj.get("path") != path or obj.get("body") != body_hash(body):
        raise SignatureError("request signature does not cover this method, path and body", reason="bad_request")
    ts = obj.get("ts")
    if not isinstance(ts, int) or abs(now_ms - ts) > max_age_ms:
        raise SignatureError("request timestamp is outside the allowed window", reason="stale_request")
    return PeerRequest(node=node, target=me, method=method.upper(), path=path, ts=ts)
