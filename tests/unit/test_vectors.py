"""The protocol test vectors, checked both ways: pocsync reproduces them from their inputs, and
pocsync and an independent verifier (tests/independent, written from the DSSE definition) accept them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import hlc as hlcmod
from pocsync.core import manifest as mf
from pocsync.core.heads import verify as verify_heads
from pocsync.core.merge import digest_lines, view_digest
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import ProtocolError
from tests.independent import dsse_verify

V = Path(__file__).parent.parent / "vectors"


def load(name: str) -> dict:
    return json.loads((V / name).read_text())


def manifest() -> mf.Manifest:
    return mf.parse(load("manifest.json")["envelope"].encode())


def test_hlc_vectors() -> None:
    v = load("hlc.json")
    for case in v["next"]:
        assert hlcmod.next_hlc(case["last"], case["now_ms"]) == case["expect"]
    assert [c["expect"] for c in v["next"]] == ["1763800000123-0000", "1763800000123-0001",
                                                "1763800000123-0042", "1763800000124-0000",
                                                "1763800009999-0000"]
    assert all(hlcmod.is_hlc(s) for s in v["valid"])
    for s in v["invalid"]:
        assert not hlcmod.is_hlc(s)
        with pytest.raises(ProtocolError):
            hlcmod.HLC.parse(s)


def test_envelope_vector_both_ways() -> None:
    v = load("envelope.json")
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["private_key_seed_hex"]))
    payload = base64.b64decode(v["payload_b64"])
    assert dsse.pae(v["payloadType"], payload).hex() == v["pae_hex"]
    assert dsse.sign(v["payloadType"], payload, v["keyid"], key).to_bytes().decode() == v["envelope"]
    env = dsse.parse(v["envelope"].encode(), max_bytes=1 << 16)
    assert dsse.verify_one(env, lambda kid: key.public_key() if kid == v["keyid"] else None) == v["keyid"]
    # independent verifier
    ptype, body = dsse_verify.verify(v["envelope"], {v["keyid"]: base64.b64decode(v["public_key"])})
    assert (ptype, body) == (v["payloadType"], payload)
    assert dsse_verify.pae(ptype, body).hex() == v["pae_hex"]


def test_independent_verifier_rejects_tampering() -> None:
    v = load("envelope.json")
    env = json.loads(v["envelope"])
    env["payload"] = base64.b64encode(b'{"hello":"DSSE","n":2}').decode()
    with pytest.raises(ValueError):
        dsse_verify.verify(json.dumps(env), {v["keyid"]: base64.b64decode(v["public_key"])})


def test_manifest_vector_both_ways() -> None:
    v = load("manifest.json")
    root = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["root_seed_hex"]))
    m = manifest()
    assert m.id == v["id"] and m.envelope.payload.decode() == v["payload"]
    assert mf.sign(mf.unsigned(json.loads(v["payload"])), root).to_bytes().decode() == v["envelope"]
    mf.check_install(None, m, now_s=1_800_000_000)
    ptype, body = dsse_verify.verify(v["envelope"], {v["root_keyid"]: base64.b64decode(v["root_public"])})
    assert ptype == dsse.MANIFEST_TYPE and body.decode() == v["payload"]


def test_changeset_vectors_both_ways() -> None:
    v = load("changeset.json")
    m = manifest()
    eu_pub = base64.b64decode(json.loads(load("manifest.json")["payload"])["nodes"]["eu"]["signing_keys"][0]["public"])
    rep = Replica(MemoryState(), m)
    for link in v["chain"]:
        # independent: signature and id
        ptype, body = dsse_verify.verify(link["envelope"], {"eu:k1": eu_pub})
        assert body.decode() == link["payload"] and dsse_verify.changeset_id(body) == link["id"]
        # pocsync: verify and accept
        cs = csmod.verify(link["envelope"].encode(), m, max_bytes=1 << 16)
        assert cs.id == link["id"]
        assert rep.receive(link["envelope"].encode(), now_ms=1_763_800_001_000).status == "accepted"
    assert sorted(map(list, rep.state.view_refs())) == v["view_after"]
    assert view_digest(rep.state.view_refs()) == v["digest_after"]
    # unknown entry fields are kept
    assert rep.state.winner("DEU/technical").entry["x-regional-field"] == "kept"
    # pocsync reproduces the payload bytes from the values
    p1 = json.loads(v["chain"][0]["payload"])
    again = csmod.build_payload(origin=p1["origin"], seq=p1["seq"], prev=p1["prev"], hlc=p1["hlc"],
                                manifest=p1["manifest"], author=p1["author"], ops=p1["ops"])
    assert again.decode() == v["chain"][0]["payload"]


def test_digest_vector() -> None:
    v = load("digest.json")
    view = [tuple(x) for x in v["view"]]
    assert digest_lines(view).decode() == v["lines"]
    assert v["lines"].startswith("DEU/technical ")  # sorted
    assert view_digest(view) == v["digest"]
    assert v["empty_digest"] == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_heads_vector() -> None:
    v = load("heads.json")
    hv = verify_heads(v["envelope"].encode(), manifest())
    assert hv.payload().decode() == v["payload"]
    assert hv.node == "eu" and hv.heads["eu"][0] == 2


def test_sealed_vector_opens_and_sealing_round_trips() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from pocsync.core.seal import open_sealed, seal

    v = load("sealed.json")
    key = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["recipient_private_seed_hex"]))
    opened = open_sealed(v["sealed"].encode(), me=v["recipient"], key=key, max_bytes=1 << 16, context=v["context"])
    assert opened.plaintext.decode() == v["plaintext"] and opened.sender == "eu" and opened.manifest == 1
    assert opened.recipients == ("osce", "un")
    again = seal(v["plaintext"].encode(), sender="eu", manifest=1, context=v["context"],
                 recipients={"un": key.public_key()})
    assert open_sealed(again, me="un", key=key, max_bytes=1 << 16).plaintext.decode() == v["plaintext"]
    assert v["plaintext"].encode() not in v["sealed"].encode()
