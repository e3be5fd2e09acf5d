"""Sealed messages between nodes (PROTOCOL.md §12).

A fresh random 32-byte content key K encrypts the plaintext (a DSSE envelope, or a batch of them)
with ChaCha20-Poly1305 under a fresh 12-byte nonce.  K is wrapped for each recipient with HPKE
(RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) using
``cryptography.hazmat.primitives.hpke``.  That API's single-shot ``encrypt`` takes no AAD, so the
associated data is bound through HPKE's ``info``::

    info = "pocsync/v1 seal " || recipient node id || "\\n" || AAD
    AAD  = canonical JSON of {"context", "manifest", "recipients": [sorted ids], "sender", "type"}

``wrapped`` is the HPKE output as the library returns it: the 32-byte encapsulated key followed by
the 48-byte ciphertext of K (80 bytes).  The inner signature is what authenticates; a blob that
fails to open is counted and dropped by the caller, never quarantined.  Pure: no I/O, no clock.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from pocsync.core import jsonc
from pocsync.core.keys import b64, unb64
from pocsync.core.manifest import NODE_ID_RE
from pocsync.errors import OversizeError, PocsyncError, SealError

SEALED_TYPE = "pocsync.sealed/v1"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
NONCE_LEN, WRAPPED_LEN = 12, 80


@dataclass(frozen=True)
class Opened:
    sender: str
    manifest: int
    context: str
    recipients: tuple[str, ...]
    plaintext: bytes


def aad(*, sender: str, manifest: int, context: str, recipients: list[str]) -> bytes:
    return jsonc.dumps(
        {
            "type": SEALED_TYPE,
            "sender": sender,
            "manifest": manifest,
            "context": context,
            "recipients": sorted(recipients),
        }
    )


def _info(recipient: str, ad: bytes) -> bytes:
    return b"pocsync/v1 seal " + recipient.encode("utf-8") + b"\n" + ad


def seal(
    plaintext: bytes, *, sender: str, manifest: int, context: str, recipients: Mapping[str, X25519PublicKey]
) -> bytes:
    if not recipients:
        raise SealError("nobody to seal for", reason="no_recipients")
    names = sorted(recipients)
    ad = aad(sender=sender, manifest=manifest, context=context, recipients=names)
    key, nonce = ChaCha20Poly1305.generate_key(), os.urandom(NONCE_LEN)
    return jsonc.dumps(
        {
            "type": SEALED_TYPE,
            "sender": sender,
            "manifest": manifest,
            "context": context,
            "nonce": b64(nonce),
            "ciphertext": b64(ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad)),
            "recipients": [
                {"node": n, "wrapped": b64(SUITE.encrypt(key, recipients[n], info=_info(n, ad)))} for n in names
            ],
        }
    )


def peek(blob: bytes, *, max_bytes: int) -> dict[str, Any]:
    """The outer header (sender, manifest, context, recipients) without decrypting."""
    if len(blob) > max_bytes:
        raise OversizeError(f"sealed message is {len(blob)} bytes, the cap is {max_bytes}", size=len(blob))
    try:
        obj = jsonc.loads(blob)
    except PocsyncError as exc:
        raise SealError(f"sealed message: {exc.message}", reason="malformed_sealed") from None
    if not isinstance(obj, dict) or obj.get("type") != SEALED_TYPE:
        raise SealError("not a pocsync sealed message", reason="malformed_sealed")
    sender, manifest, context, recips = (
        obj.get("sender"),
        obj.get("manifest"),
        obj.get("context"),
        obj.get("recipients"),
    )
    if not (
        isinstance(sender, str)
        and NODE_ID_RE.match(sender)
        and isinstance(manifest, int)
        and not isinstance(manifest, bool)
        and isinstance(context, str)
        and isinstance(recips, list)
        and all(isinstance(r, dict) and isinstance(r.get("node"), str) for r in recips)
    ):
        raise SealError("sealed message header is malformed", reason="malformed_sealed")
    names = [r["node"] for r in recips]
    if names != sorted(set(names)):
        raise SealError("sealed recipients must be sorted and distinct", reason="malformed_sealed")
    return {"sender": sender, "manifest": manifest, "context": context, "recipients": names, "_obj": obj}


def open_sealed(blob: bytes, *, me: str, key: X25519PrivateKey, max_bytes: int, context: str | None = None) -> Opened:
    h = peek(blob, max_bytes=max_bytes)
    if context is not None and h["context"] != context:
        raise SealError(f"sealed for context {h['context']!r}, received on {context!r}", reason="wrong_context")
    if me not in h["recipients"]:
        raise SealError(f"{me} is not a recipient", reason="not_a_recipient")
    obj = h["_obj"]
    ad = aad(sender=h["sender"], manifest=h["manifest"], context=h["context"], recipients=h["recipients"])
    mine = next(r for r in obj["recipients"] if r["node"] == me)
    try:
        wrapped = unb64(mine.get("wrapped"), what="wrapped key", exc=SealError)
        nonce = unb64(obj.get("nonce"), what="nonce", exc=SealError)
        ct = unb64(obj.get("ciphertext"), what="ciphertext", exc=SealError)
        if len(wrapped) != WRAPPED_LEN or len(nonce) != NONCE_LEN:
            raise InvalidTag
        k = SUITE.decrypt(wrapped, key, info=_info(me, ad))
        plaintext = ChaCha20Poly1305(k).decrypt(nonce, ct, ad)
    except (InvalidTag, SealError, ValueError):
        raise SealError("sealed message cannot be opened", reason="cannot_open") from None
    return Opened(h["sender"], h["manifest"], h["context"], tuple(h["recipients"]), plaintext)
