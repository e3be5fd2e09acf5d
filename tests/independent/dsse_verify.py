"""An independent DSSE verifier, written from the DSSE definition and PROTOCOL.md — NOT from pocsync.

It imports nothing from pocsync: only the standard library and the Ed25519 primitive of
`cryptography`.  Used by the tests to check pocsync's envelopes and test vectors from outside.

DSSE (github.com/secure-systems-lab/dsse, protocol.md):
    PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body
    LEN(s) = ASCII decimal encoding of the byte length of s, with no leading zeros
    Envelope JSON: {"payload": b64(body), "payloadType": type, "signatures": [{"keyid", "sig": b64(sig)}]}
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def pae(payload_type: str, body: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b" ".join([b"DSSEv1", str(len(t)).encode("ascii"), t, str(len(body)).encode("ascii"), body])


def verify(envelope_json: str | bytes, public_keys: dict[str, bytes]) -> tuple[str, bytes]:
    """Return (payloadType, payload) if some signature verifies with the key its keyid names.

    ``public_keys`` maps keyid -> 32 raw Ed25519 public-key bytes.  Raises ValueError otherwise.
    """
    env = json.loads(envelope_json)
    payload_type = env["payloadType"]
    body = base64.b64decode(env["payload"], validate=True)
    message = pae(payload_type, body)
    for s in env["signatures"]:
        raw = public_keys.get(s["keyid"])
        if raw is None:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(s["sig"], validate=True), message)
        except InvalidSignature:
            continue
        return payload_type, body
    raise ValueError("no signature verified")


def changeset_id(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
