"""DSSE envelopes with Ed25519 (PROTOCOL.md §5).

An envelope is ``{"payloadType", "payload", "signatures": [{"keyid", "sig"}]}``
with standard base64.  The signature covers PAE(payloadType, payload)::

    "DSSEv1" SP len(type) SP type SP len(payload) SP payload

with lengths in ASCII decimal.  Verification happens over the payload bytes as
received; the payload is parsed only after a signature verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pocsync.core import jsonc
from pocsync.core.keys import b64, unb64
from pocsync.errors import EnvelopeError, MalformedJSON, OversizeError, SignatureError

CHANGESET_TYPE = "application/vnd.pocsync.changeset+json"
MANIFEST_TYPE = "application/vnd.pocsync.manifest+json"
HEADS_TYPE = "application/vnd.pocsync.heads+json"
PROOF_TYPE = "application/vnd.pocsync.proof+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": b64(self.payload),
            "signatures": [{"keyid": s.keyid, "sig": b64(s.sig)} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        return jsonc.dumps(self.to_json())

    def with_signature(self, keyid: str, key: Ed25519PrivateKey) -> Envelope:
        sig = Signature(keyid, key.sign(pae(self.payload_type, self.payload)))
        kept = tuple(s for s in self.signatures if s.keyid != keyid)
        return Envelope(self.payload_type, self.payload, kept + (sig,))


def sign(payload_type: str, payload: bytes, keyid: str, key: Ed25519PrivateKey) -> Envelope:
    return Envelope(payload_type, payload, ()).with_signature(keyid, key)


def parse(data: bytes, *, max_bytes: int, payload_type: str | None = None) -> Envelope:
    """Parse envelope JSON (not the payload).  Caps size before reading."""
    if len(data) > max_bytes:
        raise OversizeError(f"envelope is {len(data)} bytes, the cap is {max_bytes}", size=len(data))
    try:
        obj = jsonc.loads(data)
    except MalformedJSON as exc:
        raise EnvelopeError(f"envelope: {exc.message}", reason=exc.reason) from None
    return from_json(obj, payload_type=payload_type)


def from_json(obj: object, *, payload_type: str | None = None) -> Envelope:
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope must be a JSON object")
    extra = set(obj) - {"payloadType", "payload", "signatures"}
    if extra:
        raise EnvelopeError(f"envelope has unknown members: {sorted(extra)}")
    ptype = obj.get("payloadType")
    if not isinstance(ptype, str):
        raise EnvelopeError("envelope.payloadType must be a string")
    if payload_type is not None and ptype != payload_type:
        raise EnvelopeError(
            f"envelope.payloadType is {ptype!r}, expected {payload_type!r}", reason="wrong_payload_type"
        )
    payload = unb64(obj.get("payload"), what="envelope.payload", exc=EnvelopeError)
    sigs_raw = obj.get("signatures")
    if not isinstance(sigs_raw, list):
        raise EnvelopeError("envelope.signatures must be a list")
    sigs = []
    for i, s in enumerate(sigs_raw):
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s.get("keyid"), str):
            raise EnvelopeError(f"envelope.signatures[{i}] must be {{keyid, sig}}")
        sigs.append(Signature(s["keyid"], unb64(s["sig"], what=f"signatures[{i}].sig", exc=EnvelopeError)))
    return Envelope(ptype, payload, tuple(sigs))


def verify_one(env: Envelope, lookup: Callable[[str], Ed25519PublicKey | None]) -> str:
    """Verify an envelope that must carry exactly one signature.

    ``lookup`` maps a keyid to the public key allowed for it (``None`` when the
    keyid names no acceptable key).  Returns the keyid that verified.
    """
    if len(env.signatures) != 1:
        raise EnvelopeError(f"exactly one signature required, found {len(env.signatures)}", reason="signature_count")
    s = env.signatures[0]
    key = lookup(s.keyid)
    if key is None:
        raise SignatureError(f"keyid {s.keyid!r} names no key valid here", reason="unknown_key", keyid=s.keyid)
    try:
        key.verify(s.sig, pae(env.payload_type, env.payload))
    except InvalidSignature:
        raise SignatureError(
            f"signature by {s.keyid!r} does not verify", reason="bad_signature", keyid=s.keyid
        ) from None
    return s.keyid


def verified_keyids(env: Envelope, keys: dict[str, Ed25519PublicKey]) -> set[str]:
    """The keyids among ``keys`` whose signature on ``env`` verifies (for thresholds)."""
    good: set[str] = set()
    message = pae(env.payload_type, env.payload)
    for s in env.signatures:
        key = keys.get(s.keyid)
        if key is None or s.keyid in good:
            continue
        try:
            key.verify(s.sig, message)
        except InvalidSignature:
            continue
        good.add(s.keyid)
    return good


def keyids(env: Envelope) -> Iterable[str]:
    return (s.keyid for s in env.signatures)
