"""Issue 11, case 2 and its class: every parser of network input is total.

For random bytes, and for well-formed JSON that is wrong (a valid message with one value replaced by
random JSON, signed with a valid key where a signature is checked first), each parser returns a value
or raises an error of the one documented tree (:class:`pocsync.errors.PocsyncError`): change-set,
sealed message, head vector, manifest, peer request, token.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync import tokens
from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import heads as headsmod
from pocsync.core import jsonc, peerauth, seal
from pocsync.core import manifest as mf
from pocsync.core.heads import HeadVector
from pocsync.errors import ManifestError, PocsyncError
from tests.support.fed import T0, Fed, put

FED = Fed()
M = FED.manifest
NOW_S = T0 // 1000
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)


def total(fn: Callable[[], Any]) -> None:
    """``fn`` returns or raises a documented error; anything else is a bug (what crash-looped MQTT)."""
    try:
        fn()
    except PocsyncError as exc:
        assert isinstance(exc.reason, str) and exc.reason and exc.message
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped the parser: {exc}")


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` with one value (anywhere) replaced by random JSON, or one member dropped."""
    obj = copy.deepcopy(valid)
    where = draw(st.sampled_from(paths(obj)))
    junk = draw(json_value)
    if not where:
        return junk
    parent = obj
    for k in where[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and draw(st.booleans()):
        parent.pop(where[-1], None)
    else:
        parent[where[-1]] = junk
    return obj


def enc(value: Any) -> bytes:
    return json.dumps(value).encode()


def signed(ptype: str, payload: bytes, node: str = "eu") -> bytes:
    return dsse.sign(ptype, payload, f"{node}:k1", FED.key(node)).to_bytes()


# --- valid samples to mutate ---------------------------------------------------------------
CS_PAYLOAD = json.loads(
    csmod.build_payload(
        origin="eu",
        seq=1,
        prev=None,
        hlc="1763800000000-0000",
        manifest=1,
        author="staff@eu",
        ops=[put("DEU/technical")],
    )
)
HEADS_PAYLOAD = json.loads(
    HeadVector(
        node="eu",
        hlc="1763800000000-0000",
        manifest=1,
        heads={"eu": (1, "sha256:" + "a" * 64)},
        digest="sha256:" + "b" * 64,
        refused=0,
        quarantined=0,
        equivocations=(("osce", 2),),
    ).payload()
)
MANIFEST_PAYLOAD = M.payload
REQUEST_PAYLOAD = {
    "method": "GET",
    "path": "/v1/peer/heads",
    "body": peerauth.body_hash(b""),
    "node": "osce",
    "target": "eu",
    "ts": T0,
}
SEALED = json.loads(
    seal.seal(
        b"{}",
        sender="osce",
        manifest=1,
        context="mqtt:pocsync/v1/cs/osce",
        recipients={"eu": M.nodes["eu"].sealing_key},
    )
)
CLAIMS = {
    "iss": "eu",
    "sub": "DEU/technical",
    "aud": "pocsync",
    "iat": NOW_S,
    "iat_ms": NOW_S * 1000,
    "exp": NOW_S + 3600,
    "auth_time": NOW_S,
    "jti": "j",
    "scope": "directory",
}


# --- change-set ----------------------------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=400) | json_value.map(enc))
def test_changeset_random_bytes(data: bytes) -> None:
    total(lambda: csmod.verify(data, M, max_bytes=1 << 18))
    total(lambda: csmod.peek_identity(data, max_bytes=1 << 18))


@SETTINGS
@given(mutated(CS_PAYLOAD))
def test_changeset_signed_wrong_json(payload: Any) -> None:
    data = signed(dsse.CHANGESET_TYPE, enc(payload))
    total(lambda: csmod.verify(data, M, max_bytes=1 << 18))


@SETTINGS
@given(mutated(json.loads(signed(dsse.CHANGESET_TYPE, enc(CS_PAYLOAD)))))
def test_changeset_wrong_envelope(env: Any) -> None:
    total(lambda: csmod.verify(enc(env), M, max_bytes=1 << 18))


# --- sealed message --------------------------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=400) | json_value.map(enc) | mutated(SEALED).map(enc))
def test_sealed_message(data: bytes) -> None:
    total(lambda: seal.open_sealed(data, me="eu", key=FED.sealing["eu"], max_bytes=1 << 20))
    total(lambda: seal.peek(data, max_bytes=1 << 20))


# --- head vector -----------------------------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=400) | mutated(HEADS_PAYLOAD).map(lambda p: signed(dsse.HEADS_TYPE, enc(p))))
def test_head_vector(data: bytes) -> None:
    total(lambda: headsmod.verify(data, M))


# --- manifest --------------------------------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=400) | mutated(MANIFEST_PAYLOAD).map(lambda p: signed(dsse.MANIFEST_TYPE, enc(p))))
def test_manifest(data: bytes) -> None:
    total(lambda: mf.parse(data))


def test_case2_manifest_with_roots_5_is_a_documented_error() -> None:
    bad = dict(MANIFEST_PAYLOAD, roots=5)
    with pytest.raises(ManifestError):
        mf.parse(signed(dsse.MANIFEST_TYPE, jsonc.dumps(bad)))


# --- peer request ----------------------------------------------------------------------------
@SETTINGS
@given(
    st.text(max_size=200)
    | st.binary(max_size=200).map(lambda b: "Pocsync " + base64.b64encode(b).decode())
    | mutated(REQUEST_PAYLOAD).map(
        lambda p: "Pocsync " + base64.b64encode(signed(peerauth.PEER_REQUEST_TYPE, enc(p), "osce")).decode()
    )
)
def test_peer_request(header: str) -> None:
    total(
        lambda: peerauth.verify_request(
            header, manifest=M, me="eu", method="GET", path="/v1/peer/heads", body=b"", now_ms=T0
        )
    )


def test_peer_request_header_that_is_not_utf8() -> None:
    header = "Pocsync " + b"\xff\xfe".decode("utf-8", "surrogateescape")  # how aiohttp hands it over
    total(lambda: peerauth.verify_request(header, manifest=M, me="eu", method="GET", path="/", body=b"", now_ms=T0))


# --- token -----------------------------------------------------------------------------------
def es256(claims: Any, header: dict | None = None) -> str:
    from cryptography.hazmat.primitives import serialization
    from jose import jwt

    pem = (
        FED.token["eu"]
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    return jwt.encode(claims, pem, algorithm="ES256", headers=header or {"kid": "eu:t1"})


@SETTINGS
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_token_random_strings(token: str) -> None:
    total(lambda: tokens.verify_signature(token, manifest=M, now_s=NOW_S))
    total(lambda: tokens.TokenCache().verify(token, manifest=M, now_s=NOW_S))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(CLAIMS).filter(lambda c: isinstance(c, dict)))
def test_token_signed_wrong_claims(claims: dict) -> None:
    token = es256(claims)
    total(lambda: tokens.TokenCache().verify(token, manifest=M, now_s=NOW_S, lookup_entry=lambda k: None))


def test_token_nested_too_deep_is_malformed() -> None:
    part = base64.urlsafe_b64encode(b"[" * 50_000).rstrip(b"=").decode()
    total(lambda: tokens.verify_signature(f"{part}.{part}.{part}", manifest=M, now_s=NOW_S))
