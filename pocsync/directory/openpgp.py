"""A small, capped reader of an armored OpenPGP public key: its fingerprint, checked at the origin.

An entry's ``public_key`` (issue 17) is an ASCII-armored transferable public key (RFC 9580 §6.2,
§10.1).  At the origin, before signing, the armor is read, its checksum (when given) verified, its
packets framed, and the first packet — which must be a public-key packet of version 4 or 6 — gives the
fingerprint: v4 = SHA-1(0x99 || 2-octet length || body), v6 = SHA-256(0x9B || 4-octet length || body).
The entry's ``public_key_fingerprint`` must equal it.  Nothing here verifies a signature: the fingerprint
is what a person checks out of band, and the page's OpenPGP library reads the key again.

Pure and bounded: sizes are capped before anything is decoded, no recursion, explicit lists of what is
allowed.  Every refusal is a :class:`PublicKeyError` with a message for a person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from pocsync.errors import EntryError

MAX_ARMOR_CHARS = 16 * 1024
MAX_PACKETS = 512
BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
END = "-----END PGP PUBLIC KEY BLOCK-----"
MAX_HEADERS = 16
FINGERPRINT_RE = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})\Z")
_B64_LINE = re.compile(r"^[A-Za-z0-9+/]*={0,2}\Z")
_CHECKSUM = re.compile(r"^=[A-Za-z0-9+/]{4}\Z")
_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}: [ -~]{0,200}\Z")

#: Public-key algorithms a primary key may use (RFC 9580 §9.1): signing-capable, not deprecated.
ALGORITHMS = {1: "RSA", 19: "ECDSA", 22: "EdDSALegacy", 27: "Ed25519", 28: "Ed448"}
MIN_RSA_BITS = 2048
PUBLIC_KEY_TAG, SECRET_KEY_TAG, SECRET_SUBKEY_TAG = 6, 5, 7


class PublicKeyError(EntryError):
    reason = "bad_public_key"


@dataclass(frozen=True)
class KeyInfo:
    version: int
    algorithm: str
    created: int  # seconds since 1970
    fingerprint: str  # upper-case hex, 40 (v4) or 64 (v6) digits
    bits: int | None = None  # RSA modulus size


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text: str) -> bytes:
    """The packets of an armored public key block (ASCII only, at most MAX_ARMOR_CHARS)."""
    if not isinstance(text, str):
        raise PublicKeyError("public_key must be a text (an armored OpenPGP public key)", field="public_key")
    if len(text) > MAX_ARMOR_CHARS:
        raise PublicKeyError(f"public_key is {len(text)} characters; at most {MAX_ARMOR_CHARS}", field="public_key")
    bad = next((c for c in text if not (" " <= c <= "~" or c in "\r\n\t")), None)
    if bad is not None:
        raise PublicKeyError(
            f"public_key holds U+{ord(bad):04X}: an armored key is printable ASCII only", field="public_key"
        )
    lines = [ln.rstrip(" \t\r") for ln in text.strip().split("\n")]
    if not lines or lines[0] != BEGIN:
        if any("PRIVATE KEY" in ln for ln in lines[:3]):
            raise PublicKeyError(
                "public_key holds a PRIVATE key block: never publish a private key; export the "
                "public key (gpg --armor --export FINGERPRINT)",
                field="public_key",
            )
        raise PublicKeyError(f"public_key must start with {BEGIN}", field="public_key")
    if lines[-1] != END:
        raise PublicKeyError(f"public_key must end with {END}", field="public_key")
    body = lines[1:-1]
    i = 0
    while i < len(body) and body[i] != "":
        if not _HEADER.match(body[i]) or i >= MAX_HEADERS:
            raise PublicKeyError(f"armor header line {body[i][:40]!r} is not 'Name: value'", field="public_key")
        i += 1
    if i == len(body):
        raise PublicKeyError("the armor has no blank line before its data", field="public_key")
    data_lines = body[i + 1 :]
    checksum = None
    if data_lines and _CHECKSUM.match(data_lines[-1]):
        checksum = data_lines.pop()
    for ln in data_lines:
        if not _B64_LINE.match(ln) or len(ln) > 76:
            raise PublicKeyError("the armor data is not base64 lines of at most 76 characters", field="public_key")
    try:
        packets = base64.b64decode("".join(data_lines), validate=True)
    except (binascii.Error, ValueError):
        raise PublicKeyError("the armor data is not valid base64", field="public_key") from None
    if checksum is not None:
        want = int.from_bytes(base64.b64decode(checksum[1:]), "big")
        if _crc24(packets) != want:
            raise PublicKeyError("the armor checksum does not match its data (a damaged copy?)", field="public_key")
    if not packets:
        raise PublicKeyError("the armor holds no data", field="public_key")
    return packets


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of every packet, framed by RFC 9580 §4.2 (no partial lengths, no indeterminate length)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(out) >= MAX_PACKETS:
            raise PublicKeyError(f"more than {MAX_PACKETS} packets", field="public_key")
        head = data[pos]
        pos += 1
        if not head & 0x80:
            raise PublicKeyError("not an OpenPGP packet (bad header octet)", field="public_key")
        if head & 0x40:  # new format
            tag = head & 0x3F
            if pos >= len(data):
                raise PublicKeyError("a packet is cut short", field="public_key")
            o1 = data[pos]
            if o1 < 192:
                length, pos = o1, pos + 1
            elif o1 < 224:
                if pos + 1 >= len(data):
                    raise PublicKeyError("a packet is cut short", field="public_key")
                length, pos = ((o1 - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif o1 == 255:
                if pos + 4 >= len(data):
                    raise PublicKeyError("a packet is cut short", field="public_key")
                length, pos = int.from_bytes(data[pos + 1 : pos + 5], "big"), pos + 5
            else:
                raise PublicKeyError("partial body lengths are not allowed in a key", field="public_key")
        else:  # legacy format
            tag, kind = (head >> 2) & 0x0F, head & 0x03
            if kind == 3:
                raise PublicKeyError("an indeterminate packet length is not allowed in a key", field="public_key")
            n = (1, 2, 4)[kind]
            if pos + n > len(data):
                raise PublicKeyError("a packet is cut short", field="public_key")
            length, pos = int.from_bytes(data[pos : pos + n], "big"), pos + n
        if pos + length > len(data):
            raise PublicKeyError("a packet is longer than the data", field="public_key")
        out.append((tag, data[pos : pos + length]))
        pos += length
    return out


def _rsa_bits(material: bytes) -> int:
    if len(material) < 2:
        raise PublicKeyError("the RSA key material is cut short", field="public_key")
    return int.from_bytes(material[:2], "big")


def parse(text: str) -> KeyInfo:
    """The primary key of an armored public key block, or PublicKeyError."""
    packets = _packets(dearmor(text))
    if any(tag in (SECRET_KEY_TAG, SECRET_SUBKEY_TAG) for tag, _ in packets):
        raise PublicKeyError("public_key holds secret key material: never publish a private key", field="public_key")
    tag, body = packets[0]
    if tag != PUBLIC_KEY_TAG:
        raise PublicKeyError(f"the first packet is of type {tag}, not a public key (6)", field="public_key")
    if not body:
        raise PublicKeyError("the public-key packet is empty", field="public_key")
    version = body[0]
    if version == 4:
        if len(body) < 6:
            raise PublicKeyError("the public-key packet is cut short", field="public_key")
        material = body[6:]
        fingerprint = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest()
    elif version == 6:
        if len(body) < 10 or int.from_bytes(body[6:10], "big") != len(body) - 10:
            raise PublicKeyError("the v6 public-key packet's key material length is wrong", field="public_key")
        material = body[10:]
        fingerprint = hashlib.sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest()
    else:
        raise PublicKeyError(f"public-key packet version {version} is not supported (4 or 6)", field="public_key")
    algo = body[5]
    if algo not in ALGORITHMS:
        raise PublicKeyError(
            f"public-key algorithm {algo} is not allowed for a primary key (allowed: "
            f"{', '.join(f'{v} ({k})' for k, v in ALGORITHMS.items())})",
            field="public_key",
        )
    bits = None
    if algo == 1:
        bits = _rsa_bits(material)
        if bits < MIN_RSA_BITS:
            raise PublicKeyError(f"an RSA key of {bits} bits is too weak (at least {MIN_RSA_BITS})", field="public_key")
    return KeyInfo(version, ALGORITHMS[algo], int.from_bytes(body[1:5], "big"), fingerprint.upper(), bits)


def normalise_fingerprint(value: object) -> str:
    """``"ABCD 1234 …"`` → ``"ABCD1234…"``: upper-case hex, 40 or 64 digits, or PublicKeyError."""
    if not isinstance(value, str):
        raise PublicKeyError(
            "public_key_fingerprint must be a text of 40 (v4) or 64 (v6) hex digits", field="public_key_fingerprint"
        )
    fp = re.sub(r"[\s:]", "", value).upper()
    fp = fp[2:] if fp.startswith("0X") else fp
    if not FINGERPRINT_RE.match(fp):
        raise PublicKeyError(
            f"public_key_fingerprint {value!r} is not 40 or 64 hex digits", field="public_key_fingerprint"
        )
    return fp
