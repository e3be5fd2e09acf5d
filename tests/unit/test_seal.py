"""Sealing: only recipients open; any change to header or ciphertext fails; nothing leaks."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync.core import jsonc
from pocsync.core.seal import open_sealed, peek, seal
from pocsync.errors import OversizeError, SealError

MARK = b'{"organisation":"UNIQUE-MARKER-7f3a example.org"}'


def keys(n: int) -> dict[str, X25519PrivateKey]:
    return {f"node{i:02d}": X25519PrivateKey.generate() for i in range(n)}


def sealed(ks: dict[str, X25519PrivateKey], **kw) -> bytes:
    args = {"sender": "eu", "manifest": 7, "context": "mqtt:pocsync/v1/cs/eu"} | kw
    return seal(MARK, recipients={n: k.public_key() for n, k in ks.items()}, **args)


@pytest.mark.parametrize("n", [1, 3, 10])
def test_every_recipient_opens(n: int) -> None:
    ks = keys(n)
    blob = sealed(ks)
    assert MARK not in blob and b"UNIQUE-MARKER" not in blob
    for name, k in ks.items():
        o = open_sealed(blob, me=name, key=k, max_bytes=1 << 20, context="mqtt:pocsync/v1/cs/eu")
        assert (o.plaintext, o.sender, o.manifest) == (MARK, "eu", 7)
    assert peek(blob, max_bytes=1 << 20)["recipients"] == sorted(ks)


def test_non_recipient_and_wrong_key_cannot_open() -> None:
    ks = keys(2)
    blob = sealed(ks)
    with pytest.raises(SealError) as e:
        open_sealed(blob, me="other", key=X25519PrivateKey.generate(), max_bytes=1 << 20)
    assert e.value.reason == "not_a_recipient"
    with pytest.raises(SealError) as e:
        open_sealed(blob, me="node00", key=X25519PrivateKey.generate(), max_bytes=1 << 20)
    assert e.value.reason == "cannot_open"


@pytest.mark.parametrize("field,value", [("sender", "osce"), ("manifest", 8), ("context", "mqtt:pocsync/v1/cs/x")])
def test_tampered_header_fails(field: str, value: object) -> None:
    ks = keys(2)
    obj = json.loads(sealed(ks))
    obj[field] = value
    with pytest.raises(SealError):
        open_sealed(jsonc.dumps(obj), me="node00", key=ks["node00"], max_bytes=1 << 20)


def test_dropping_a_recipient_or_changing_ciphertext_fails() -> None:
    ks = keys(3)
    obj = json.loads(sealed(ks))
    obj["recipients"] = obj["recipients"][:2]
    with pytest.raises(SealError):
        open_sealed(jsonc.dumps(obj), me="node00", key=ks["node00"], max_bytes=1 << 20)
    obj = json.loads(sealed(ks))
    ct = bytearray(obj["ciphertext"].encode())
    ct[5] = ord("A") if ct[5] != ord("A") else ord("B")
    obj["ciphertext"] = ct.decode()
    with pytest.raises(SealError):
        open_sealed(jsonc.dumps(obj), me="node00", key=ks["node00"], max_bytes=1 << 20)


def test_oversize_refused_before_parsing_and_wrong_context() -> None:
    ks = keys(1)
    blob = sealed(ks)
    with pytest.raises(OversizeError):
        open_sealed(blob, me="node00", key=ks["node00"], max_bytes=len(blob) - 1)
    with pytest.raises(SealError) as e:
        open_sealed(blob, me="node00", key=ks["node00"], max_bytes=1 << 20, context="http:/v1/peer/changesets")
    assert e.value.reason == "wrong_context"
    with pytest.raises(SealError):
        open_sealed(b"garbage", me="node00", key=ks["node00"], max_bytes=1 << 20)


def test_adding_a_recipient_or_swapping_wrapped_keys_fails() -> None:
    ks = keys(3)
    obj = json.loads(sealed(dict(list(ks.items())[:2])))
    extra = X25519PrivateKey.generate()
    obj["recipients"].append({"node": "node99", "wrapped": obj["recipients"][0]["wrapped"]})
    for name, k in [("node00", ks["node00"]), ("node99", extra)]:
        with pytest.raises(SealError):
            open_sealed(jsonc.dumps(obj), me=name, key=k, max_bytes=1 << 20)
    obj = json.loads(sealed(ks))
    r = obj["recipients"]
    r[0]["wrapped"], r[1]["wrapped"] = r[1]["wrapped"], r[0]["wrapped"]
    for name in ("node00", "node01"):
        with pytest.raises(SealError) as e:
            open_sealed(jsonc.dumps(obj), me=name, key=ks[name], max_bytes=1 << 20)
        assert e.value.reason == "cannot_open"
