"""The poke vector (PROTOCOL.md §13.3, ADR 11), both ways: pocsync reproduces the signed request from
its inputs, verifies it as the target, and the body is the poking node's own verified head vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pocsync.core import manifest as mf
from pocsync.core.heads import verify as verify_heads
from pocsync.core.peerauth import body_hash, sign_request, verify_request
from pocsync.errors import PocsyncError
from tests.vectors.make_vectors import ed

V = Path(__file__).parent.parent / "vectors"


def load(name: str) -> dict:
    return json.loads((V / name).read_text())


def test_poke_vector_both_ways() -> None:
    v = load("poke.json")
    m = mf.parse(load("manifest.json")["envelope"].encode())
    body = v["body"].encode()
    assert body == load("heads.json")["envelope"].encode() and v["body_sha256"] == body_hash(body)
    again = sign_request(
        node="eu",
        keyid="eu:k1",
        key=ed("eu:k1"),
        target=v["target"],
        method=v["method"],
        path=v["path"],
        body=body,
        now_ms=v["ts"],
    )
    assert again == v["authorization"]  # Ed25519 is deterministic: the same bytes
    req = verify_request(
        v["authorization"], manifest=m, me="un", method="POST", path="/v1/peer/poke", body=body, now_ms=v["ts"] + 1000
    )
    assert req.node == "eu"
    hv = verify_heads(body, m)
    assert hv.node == req.node and hv.heads["eu"][0] == 2
    assert json.loads(v["request_payload"])["body"] == v["body_sha256"]


@pytest.mark.parametrize("tamper", ["body", "target", "path"])
def test_poke_vector_refuses_tampering(tamper: str) -> None:
    v = load("poke.json")
    m = mf.parse(load("manifest.json")["envelope"].encode())
    body = v["body"].encode()
    args = {"me": "un", "path": "/v1/peer/poke", "body": body}
    if tamper == "body":
        args["body"] = body.replace(b'"payloadType"', b'"payloadType" ')
    elif tamper == "target":
        args["me"] = "osce"
    else:
        args["path"] = "/v1/peer/poke?x=1"
    with pytest.raises(PocsyncError):
        verify_request(v["authorization"], manifest=m, method="POST", now_ms=v["ts"] + 1000, **args)
