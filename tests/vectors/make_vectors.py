"""Writes the protocol test vectors in tests/vectors/ (run once; the tests check them both ways).

Everything is deterministic: fixed private keys (from fixed seeds), fixed times, and Ed25519
signatures, which are deterministic.  Usage: .venv/bin/python tests/vectors/make_vectors.py
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import hlc as hlcmod
from pocsync.core import manifest as mf
from pocsync.core.heads import HeadVector
from pocsync.core.keys import ed25519_public_b64, x25519_public_b64
from pocsync.core.merge import digest_lines, view_digest

HERE = Path(__file__).parent


def seed(label: str) -> bytes:
    return hashlib.sha256(b"pocsync test vector " + label.encode()).digest()


def ed(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed(label))


def write(name: str, obj: object) -> None:
    (HERE / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    root = ed("root")
    eu = ed("eu:k1")
    eu_x = X25519PrivateKey.from_private_bytes(seed("eu:sealing"))

    # hlc
    write("hlc.json", {
        "next": [
            {"last": None, "now_ms": 1763800000123, "expect": hlcmod.next_hlc(None, 1763800000123)},
            {"last": "1763800000123-0000", "now_ms": 1763800000123,
             "expect": hlcmod.next_hlc("1763800000123-0000", 1763800000123)},
            {"last": "1763800000123-0041", "now_ms": 1763800000100,
             "expect": hlcmod.next_hlc("1763800000123-0041", 1763800000100)},
            {"last": "1763800000123-9999", "now_ms": 1763800000000,
             "expect": hlcmod.next_hlc("1763800000123-9999", 1763800000000)},
            {"last": "1763800000123-0007", "now_ms": 1763800009999,
             "expect": hlcmod.next_hlc("1763800000123-0007", 1763800009999)},
        ],
        "valid": ["0000000000000-0000", "1763800000123-0000", "9999999999999-9999"],
        "invalid": ["1763800000123", "176380000012-0000", "1763800000123-000", "1763800000123-00000",
                    "1763800000123_0000", " 1763800000123-0000", "1763800000123-000a"],
    })

    # envelope
    payload = b'{"hello":"DSSE","n":1}'
    env = dsse.sign("application/vnd.pocsync.changeset+json", payload, "eu:k1", eu)
    write("envelope.json", {
        "description": "DSSE envelope over PAE(payloadType, payload) with Ed25519",
        "private_key_seed_hex": seed("eu:k1").hex(),
        "public_key": ed25519_public_b64(eu),
        "keyid": "eu:k1",
        "payloadType": env.payload_type,
        "payload_b64": base64.b64encode(payload).decode(),
        "pae_hex": dsse.pae(env.payload_type, payload).hex(),
        "sig_b64": base64.b64encode(env.signatures[0].sig).decode(),
        "envelope": env.to_bytes().decode(),
    })

    # manifest (signed by the root)
    payload_m = mf.new_payload([ed25519_public_b64(root)], threshold=1, expires_s=1_900_000_000)
    payload_m = mf.add_node(payload_m, {
        "node": "eu", "organisation": "European Union (example)",
        "signing_key": {"name": "k1", "public": ed25519_public_b64(eu)},
        "sealing_key": x25519_public_b64(eu_x),
        "endpoints": {"http": "https://eu.example.org:8443"},
    }, role="regional", scope=["DEU", "FRA", "ITA"])
    m = mf.sign(mf.unsigned(payload_m), root)
    write("manifest.json", {
        "root_seed_hex": seed("root").hex(), "root_public": ed25519_public_b64(root),
        "root_keyid": mf.root_keyid(ed25519_public_b64(root)),
        "payload": m.envelope.payload.decode(), "id": m.id, "envelope": m.to_bytes().decode(),
    })

    # a chain of two change-sets
    entry = {"state": "DEU", "kind": "technical", "organisation": "Example CSIRT (fictional)",
             "position": "Duty officer", "emails": ["cert@example.org"], "phones": ["+493012345678"],
             "available_24_7": True, "timezone": "Europe/Berlin", "languages": ["de", "en"],
             "holder_epoch": "1763800000123-0000", "x-regional-field": "kept"}
    p1 = csmod.build_payload(origin="eu", seq=1, prev=None, hlc="1763800000123-0000", manifest=1,
                             author="staff@eu.example.org", ops=[{"op": "put", "key": "DEU/technical",
                                                                 "entry": entry}])
    e1 = csmod.sign(p1, keyid="eu:k1", key=eu)
    p2 = csmod.build_payload(origin="eu", seq=2, prev=csmod.changeset_id(p1), hlc="1763800000200-0000",
                             manifest=1, author="staff@eu.example.org",
                             ops=[{"op": "delete", "key": "FRA/diplomatic"},
                                  {"op": "withdraw", "key": "ITA/diplomatic"}])
    e2 = csmod.sign(p2, keyid="eu:k1", key=eu)
    write("changeset.json", {
        "manifest_vector": "manifest.json",
        "chain": [
            {"payload": p1.decode(), "id": csmod.changeset_id(p1), "envelope": e1.decode()},
            {"payload": p2.decode(), "id": csmod.changeset_id(p2), "envelope": e2.decode()},
        ],
        "view_after": [["DEU/technical", csmod.changeset_id(p1) + "#0"]],
        "digest_after": view_digest([("DEU/technical", csmod.changeset_id(p1) + "#0")]),
    })

    # view digest
    view = [("FRA/diplomatic", "sha256:" + "b" * 64 + "#2"), ("DEU/technical", "sha256:" + "a" * 64 + "#0")]
    write("digest.json", {
        "view": [list(v) for v in view],
        "lines": digest_lines(view).decode(),
        "digest": view_digest(view),
        "empty_digest": view_digest([]),
    })

    # head vector
    hv = HeadVector(node="eu", hlc="1763800000300-0000", manifest=1,
                    heads={"eu": (2, csmod.changeset_id(p2))}, digest=view_digest([("DEU/technical",
                                                                                   csmod.changeset_id(p1) + "#0")]),
                    refused=0, quarantined=0, equivocations=())
    write("heads.json", {"manifest_vector": "manifest.json", "payload": hv.payload().decode(),
                         "envelope": hv.sign(keyid="eu:k1", key=eu).decode()})


def sealed_vector() -> None:
    from pocsync.core.seal import seal

    un_x = X25519PrivateKey.from_private_bytes(seed("un:sealing"))
    eu_x = X25519PrivateKey.from_private_bytes(seed("eu:sealing"))
    plaintext = b'{"hello":"example.org"}'
    blob = seal(plaintext, sender="eu", manifest=1, context="mqtt:pocsync/v1/cs/eu",
                recipients={"un": un_x.public_key(), "osce": eu_x.public_key()})
    write("sealed.json", {
        "description": "sealed to un and osce by eu (random content key and HPKE ephemeral keys: open it, "
                       "do not expect to reproduce it byte for byte)",
        "recipient": "un", "recipient_private_seed_hex": seed("un:sealing").hex(),
        "recipient_public": x25519_public_b64(un_x), "context": "mqtt:pocsync/v1/cs/eu",
        "plaintext": plaintext.decode(), "sealed": blob.decode(),
    })


if __name__ == "__main__":
    main()
    sealed_vector()
