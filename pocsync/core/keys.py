"""Public-key encodings used on the wire (PROTOCOL.md §4).

Ed25519 and X25519 public keys travel as standard base64 of their 32 raw bytes;
ES256 token keys as a JWK (RFC 7517) holding only the public part.  Key ids of root
keys are derived from the key itself, so a key id can never point at another key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pocsync.errors import KeyFileError

Raw = serialization.Encoding.Raw
RawPub = serialization.PublicFormat.Raw


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, *, what: str = "base64 value", exc: type[Exception] = KeyFileError) -> bytes:
    """Strict standard base64 (with padding); anything else raises ``exc``."""
    if not isinstance(text, str):
        raise exc(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise exc(f"{what} is not valid standard base64") from None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ed25519_public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64(pub.public_bytes(Raw, RawPub))


def ed25519_public_from_b64(text: object) -> Ed25519PublicKey:
    raw = unb64(text, what="Ed25519 public key")
    if len(raw) != 32:
        raise KeyFileError("Ed25519 public key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def x25519_public_b64(key: X25519PrivateKey | X25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return b64(pub.public_bytes(Raw, RawPub))


def x25519_public_from_b64(text: object) -> X25519PublicKey:
    raw = unb64(text, what="X25519 public key")
    if len(raw) != 32:
        raise KeyFileError("X25519 public key must be 32 bytes")
    return X25519PublicKey.from_public_bytes(raw)


def root_keyid(public_b64: str) -> str:
    """``root:<first 16 hex of SHA-256 of the raw key>``."""
    return "root:" + hashlib.sha256(unb64(public_b64, what="root public key")).hexdigest()[:16]


def es256_public_jwk(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey, kid: str) -> dict[str, str]:
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(pub.curve, ec.SECP256R1):
        raise KeyFileError("token keys must be P-256 (ES256)")
    nums = pub.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(nums.x.to_bytes(32, "big")),
        "y": b64url(nums.y.to_bytes(32, "big")),
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
    }


def es256_public_from_jwk(jwk: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise KeyFileError("token key must be an EC P-256 JWK")
    if any(k in jwk for k in ("d", "p", "q")):
        raise KeyFileError("token key JWK must not contain private material")
    try:
        x = int.from_bytes(unb64url(jwk["x"]), "big")
        y = int.from_bytes(unb64url(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError, TypeError):
        raise KeyFileError("token key JWK has a bad x or y") from None
