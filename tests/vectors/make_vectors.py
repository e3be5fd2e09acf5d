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
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.heads import HeadVector
from pocsync.core.keys import ed25519_public_b64, x25519_public_b64
from pocsync.core.merge import digest_lines, view_digest
from pocsync.errors import EntryError

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
    write(
        "hlc.json",
        {
            "next": [
                {"last": None, "now_ms": 1763800000123, "expect": hlcmod.next_hlc(None, 1763800000123)},
                {
                    "last": "1763800000123-0000",
                    "now_ms": 1763800000123,
                    "expect": hlcmod.next_hlc("1763800000123-0000", 1763800000123),
                },
                {
                    "last": "1763800000123-0041",
                    "now_ms": 1763800000100,
                    "expect": hlcmod.next_hlc("1763800000123-0041", 1763800000100),
                },
                {
                    "last": "1763800000123-9999",
                    "now_ms": 1763800000000,
                    "expect": hlcmod.next_hlc("1763800000123-9999", 1763800000000),
                },
                {
                    "last": "1763800000123-0007",
                    "now_ms": 1763800009999,
                    "expect": hlcmod.next_hlc("1763800000123-0007", 1763800009999),
                },
            ],
            "valid": ["0000000000000-0000", "1763800000123-0000", "9999999999999-9999"],
            "invalid": [
                "1763800000123",
                "176380000012-0000",
                "1763800000123-000",
                "1763800000123-00000",
                "1763800000123_0000",
                " 1763800000123-0000",
                "1763800000123-000a",
            ],
        },
    )

    # envelope
    payload = b'{"hello":"DSSE","n":1}'
    env = dsse.sign("application/vnd.pocsync.changeset+json", payload, "eu:k1", eu)
    write(
        "envelope.json",
        {
            "description": "DSSE envelope over PAE(payloadType, payload) with Ed25519",
            "private_key_seed_hex": seed("eu:k1").hex(),
            "public_key": ed25519_public_b64(eu),
            "keyid": "eu:k1",
            "payloadType": env.payload_type,
            "payload_b64": base64.b64encode(payload).decode(),
            "pae_hex": dsse.pae(env.payload_type, payload).hex(),
            "sig_b64": base64.b64encode(env.signatures[0].sig).decode(),
            "envelope": env.to_bytes().decode(),
        },
    )

    # manifest (signed by the root)
    payload_m = mf.new_payload([ed25519_public_b64(root)], threshold=1, expires_s=1_900_000_000)
    payload_m = mf.add_node(
        payload_m,
        {
            "node": "eu",
            "organisation": "European Union (example)",
            "signing_key": {"name": "k1", "public": ed25519_public_b64(eu)},
            "sealing_key": x25519_public_b64(eu_x),
            "endpoints": {"http": "https://eu.example.org:8443"},
        },
        role="regional",
        scope=["DEU", "FRA", "ITA"],
    )
    m = mf.sign(mf.unsigned(payload_m), root)
    write(
        "manifest.json",
        {
            "root_seed_hex": seed("root").hex(),
            "root_public": ed25519_public_b64(root),
            "root_keyid": mf.root_keyid(ed25519_public_b64(root)),
            "payload": m.envelope.payload.decode(),
            "id": m.id,
            "envelope": m.to_bytes().decode(),
        },
    )

    # a chain of two change-sets
    entry = {
        "state": "DEU",
        "kind": "technical",
        "organisation": "Example CSIRT (fictional)",
        "position": "Duty officer",
        "emails": ["cert@example.org"],
        "phones": ["+493012345678"],
        "available_24_7": True,
        "timezone": "Europe/Berlin",
        "languages": ["de", "en"],
        "holder_epoch": "1763800000123-0000",
        "x-regional-field": "kept",
    }
    p1 = csmod.build_payload(
        origin="eu",
        seq=1,
        prev=None,
        hlc="1763800000123-0000",
        manifest=1,
        author="staff@eu.example.org",
        ops=[{"op": "put", "key": "DEU/technical", "entry": entry}],
    )
    e1 = csmod.sign(p1, keyid="eu:k1", key=eu)
    p2 = csmod.build_payload(
        origin="eu",
        seq=2,
        prev=csmod.changeset_id(p1),
        hlc="1763800000200-0000",
        manifest=1,
        author="staff@eu.example.org",
        ops=[{"op": "delete", "key": "FRA/diplomatic"}, {"op": "withdraw", "key": "ITA/diplomatic"}],
    )
    e2 = csmod.sign(p2, keyid="eu:k1", key=eu)
    write(
        "changeset.json",
        {
            "manifest_vector": "manifest.json",
            "chain": [
                {"payload": p1.decode(), "id": csmod.changeset_id(p1), "envelope": e1.decode()},
                {"payload": p2.decode(), "id": csmod.changeset_id(p2), "envelope": e2.decode()},
            ],
            "view_after": [["DEU/technical", csmod.changeset_id(p1) + "#0"]],
            "digest_after": view_digest([("entry", "DEU/technical", csmod.changeset_id(p1) + "#0")]),
        },
    )

    # view digest
    view = [
        ("entry", "FRA/diplomatic", "sha256:" + "b" * 64 + "#2"),
        ("entry", "DEU/technical", "sha256:" + "a" * 64 + "#0"),
        ("note", "DEU", "sha256:" + "c" * 64 + "#1"),
    ]
    write(
        "digest.json",
        {
            "view": [list(v) for v in view],
            "lines": digest_lines(view).decode(),
            "digest": view_digest(view),
            "empty_digest": view_digest([]),
        },
    )

    # head vector
    hv = HeadVector(
        node="eu",
        hlc="1763800000300-0000",
        manifest=1,
        heads={"eu": (2, csmod.changeset_id(p2))},
        digest=view_digest([("entry", "DEU/technical", csmod.changeset_id(p1) + "#0")]),
        refused=0,
        quarantined=0,
        equivocations=(),
    )
    write(
        "heads.json",
        {
            "manifest_vector": "manifest.json",
            "payload": hv.payload().decode(),
            "envelope": hv.sign(keyid="eu:k1", key=eu).decode(),
        },
    )


def sealed_vector() -> None:
    from pocsync.core.seal import seal

    un_x = X25519PrivateKey.from_private_bytes(seed("un:sealing"))
    eu_x = X25519PrivateKey.from_private_bytes(seed("eu:sealing"))
    plaintext = b'{"hello":"example.org"}'
    blob = seal(
        plaintext,
        sender="eu",
        manifest=1,
        context="mqtt:pocsync/v1/cs/eu",
        recipients={"un": un_x.public_key(), "osce": eu_x.public_key()},
    )
    write(
        "sealed.json",
        {
            "description": "sealed to un and osce by eu (random content key and HPKE ephemeral keys: open it, "
            "do not expect to reproduce it byte for byte)",
            "recipient": "un",
            "recipient_private_seed_hex": seed("un:sealing").hex(),
            "recipient_public": x25519_public_b64(un_x),
            "context": "mqtt:pocsync/v1/cs/eu",
            "plaintext": plaintext.decode(),
            "sealed": blob.decode(),
        },
    )


# --- vectors added for issue 10: rejections, peer requests, merge conflicts, manifests, chains -------------
NOW_MS = 1_763_800_010_000
EXPIRES_S = 1_900_000_000
DEEP_ENTRY_HLC = "1763800000000-0000"


def x(label: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(seed(label))


def info(node: str, key: str = "k1") -> dict:
    return {
        "node": node,
        "organisation": f"{node} (example)",
        "signing_key": {"name": key, "public": ed25519_public_b64(ed(f"{node}:{key}"))},
        "sealing_key": x25519_public_b64(x(f"{node}:sealing")),
    }


def federation(scopes: dict, *, roots: list[str] = ("root",), threshold: int = 1, features: tuple = ()) -> dict:
    """An unsigned manifest payload (version 1) with the given nodes and scopes."""
    p = mf.new_payload(
        [ed25519_public_b64(ed(r)) for r in roots], threshold=threshold, expires_s=EXPIRES_S, features=features
    )
    for node, scope in scopes.items():
        p = mf.add_node(p, info(node), role="un" if node == "un" else "regional", scope=scope)
    return p


def signed(payload: dict, signers: list[str]) -> mf.Manifest:
    m = mf.unsigned(payload)
    for r in signers:
        m = mf.sign_as_previous_root(m, ed(r))
    return m


def entry(key: str, **over: object) -> dict:
    state, kind = key.split("/")
    e = {
        "state": state,
        "kind": kind,
        "organisation": f"Example organisation of {state} (fictional)",
        "emails": [f"{kind[:4]}-{state.lower()}@example.org"],
        "holder_epoch": "1763800000000-0000",
    }
    e.update(over)
    return e


class Chain:
    """Signs a node's change-sets in order (deterministic)."""

    def __init__(self, origin: str, key: str = "k1") -> None:
        self.origin, self.key, self.seq, self.prev = origin, key, 0, None

    def sign(
        self,
        hlc: str,
        ops: list,
        *,
        manifest: int = 1,
        seq: int | None = None,
        prev: object = "chain",
        key: str | None = None,
        label: str = "",
    ) -> dict:
        self.seq = seq if seq is not None else self.seq + 1
        prev_ = self.prev if prev == "chain" else prev
        payload = csmod.build_payload(
            origin=self.origin,
            seq=self.seq,
            prev=prev_,
            hlc=hlc,
            manifest=manifest,
            author=f"staff@{self.origin}.example.org",
            ops=ops,
        )
        name = key or self.key
        env = csmod.sign(payload, keyid=f"{self.origin}:{name}", key=ed(f"{self.origin}:{name}"))
        self.prev = csmod.changeset_id(payload)
        return {
            "label": label or f"{self.origin}#{self.seq}",
            "id": self.prev,
            "payload": payload.decode(),
            "envelope": env.decode(),
        }


def run_scenario(manifests: list[mf.Manifest], changesets: list[dict]) -> dict:
    """What pocsync derives from a set of change-sets (checked again, in other orders, by the tests)."""
    from pocsync.core.replica import MemoryState, Replica

    rep = Replica(MemoryState(), manifests[0])
    for m in manifests[1:]:
        rep.reevaluate(now_ms=NOW_MS, manifest=m)
    outcomes = {}
    for c in changesets:
        out = rep.receive(c["envelope"].encode(), now_ms=NOW_MS)
        outcomes[c["label"]] = out.status
    st = rep.state
    return {
        "log": sorted([o, s] for (o, s) in st.log),
        "quarantined": sorted({q[1] for q in st.quarantined}),
        "proofs": sorted([p.origin, p.seq] for p in st.proofs()),
        "refused": sorted([r.origin, r.seq, r.index, r.reason] for r in st.refusals.values()),
        "lines": digest_lines(st.digest_view()).decode(),
        "digest": st.digest(),
    }


def scenario(name: str, description: str, manifests: list[mf.Manifest], changesets: list[dict], **extra) -> None:
    write(
        name,
        {
            "description": description,
            "now_ms": NOW_MS,
            "manifests": [m.to_bytes().decode() for m in manifests],
            "changesets": changesets,
            "expect": run_scenario(manifests, changesets),
            **extra,
        },
    )


def json_vectors() -> None:
    def case(name: str, text: bytes, reason: str | None) -> dict:
        return {"name": name, "text_hex": text.hex(), "reason": reason}

    deep32, deep33 = b"[" * 32 + b"]" * 32, b"[" * 33 + b"]" * 33
    cases = [
        case("plain object", b'{"a":[1,-2,"x",true,false,null]}', None),
        case("32 nested containers (the outermost counts)", deep32, None),
        case("33 nested containers", deep33, "too_deep"),
        case("brackets inside strings do not nest", b"[" + b'"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["' + b"]", None),
        case("duplicate key", b'{"a":1,"a":1}', "duplicate_key"),
        case("duplicate key in a nested object", b'{"a":{"b":1,"b":2}}', "duplicate_key"),
        case("fraction", b"[1.0]", "float_not_allowed"),
        case("exponent", b"[1e3]", "float_not_allowed"),
        case("NaN", b"[NaN]", "float_not_allowed"),
        case("Infinity", b"[-Infinity]", "float_not_allowed"),
        case("2^53 - 1", b"[9007199254740991,-9007199254740991]", None),
        case("2^53", b"[9007199254740992]", "int_out_of_range"),
        case("an integer of 5000 digits (no reader may choke on it)", b"[" + b"1" * 5000 + b"]", "int_out_of_range"),
        case("a negative integer of 4301 digits", b"[-" + b"9" * 4301 + b"]", "int_out_of_range"),
        case("not UTF-8", b'["\xff"]', "not_utf8"),
        case("byte-order mark", b"\xef\xbb\xbf{}", "byte_order_mark"),
        case("not JSON", b'{"a":}', "malformed_json"),
        case("trailing text", b"{} x", "malformed_json"),
        case("raw control character in a string", b'["a\x01"]', "malformed_json"),
        case("lone high surrogate", b'["\\ud800"]', "lone_surrogate"),
        case("lone low surrogate in a key", b'{"\\udc00":1}', "lone_surrogate"),
        case("reversed pair", b'["\\ude00\\ud83d"]', "lone_surrogate"),
        case("surrogate pair", b'["\\ud83d\\ude00"]', None),
        case("escaped non-characters are text", b'["\\uffff\\u0000"]', None),
        case("precedence: too_deep before malformed_json", deep33[:-1], "too_deep"),
        case("precedence: malformed_json before duplicate_key", b'{"a":1,"a":2', "malformed_json"),
        case("precedence: duplicate_key before float_not_allowed", b'[1.5,{"a":1,"a":2}]', "duplicate_key"),
        case("precedence: float_not_allowed before int_out_of_range", b"[9007199254740992,1.5]", "float_not_allowed"),
        case("precedence: int_out_of_range before lone_surrogate", b'["\\ud800",9007199254740992]', "int_out_of_range"),
    ]
    # envelopes: strict JSON first, then the envelope's own structure
    good = json.loads(load_vector("envelope.json")["envelope"])

    def env_case(name: str, obj_or_bytes: object, reason: str) -> dict:
        data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
        return {"name": name, "text_hex": data.hex(), "reason": reason}

    nested = {**good, "x": json.loads(b"[" * 31 + b"]" * 31)}  # 1 + 31 = 32 containers: strict JSON passes
    too_nested = {**good, "x": json.loads(b"[" * 32 + b"]" * 32)}  # 33 containers
    envelopes = [
        env_case("unknown member", {**good, "extra": 1}, "bad_envelope"),
        env_case("unknown member 32 containers deep in all", nested, "bad_envelope"),
        env_case("unknown member 33 containers deep in all", too_nested, "too_deep"),
        env_case(
            "payloadType of a manifest where a change-set is expected",
            {**good, "payloadType": "application/vnd.pocsync.manifest+json"},
            "wrong_payload_type",
        ),
        env_case("payload not standard base64", {**good, "payload": "eyJ"}, "bad_envelope"),
        env_case(
            "url-safe base64",
            {**good, "payload": good["payload"].replace("+", "-").replace("/", "_") + "-"},
            "bad_envelope",
        ),
        env_case("no signature", {**good, "signatures": []}, "signature_count"),
        env_case("two signatures", {**good, "signatures": good["signatures"] * 2}, "signature_count"),
        env_case(
            "signature with an extra member",
            {**good, "signatures": [{**good["signatures"][0], "x": 1}]},
            "bad_envelope",
        ),
        env_case("duplicate member", (json.dumps(good)[:-1] + ', "payload": "e30="}').encode(), "duplicate_key"),
        env_case(
            "unsigned member holding an integer of 5000 digits",
            (json.dumps(good)[:-1] + ', "x": ' + "1" * 5000 + "}").encode(),
            "int_out_of_range",
        ),
    ]
    # validly signed payloads that break §7, in its order (type, members, op count, op items)
    base = {
        "type": "pocsync.changeset/v1",
        "origin": "eu",
        "seq": 1,
        "prev": None,
        "hlc": "1763800000000-0000",
        "manifest": 1,
        "author": "staff@eu.example.org",
        "ops": [{"op": "delete", "key": "DEU/technical"}],
    }

    def signed_case(name: str, payload: object, reason: str) -> dict:
        data = (
            payload
            if isinstance(payload, bytes)
            else json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        )
        return env_case(name, dsse.sign(dsse.CHANGESET_TYPE, data, "eu:k1", ed("eu:k1")).to_bytes(), reason)

    no_prev = {k: v for k, v in base.items() if k != "prev"}
    envelopes += [
        signed_case("signed payload that is a list", [base], "bad_changeset"),
        signed_case(
            "signed payload of another type, also without prev",
            {**no_prev, "type": "pocsync.changeset/v2"},
            "wrong_type",
        ),
        signed_case("signed payload without prev", no_prev, "bad_changeset"),
        signed_case(
            "signed payload with 1001 ops, one not an object",
            {**base, "ops": base["ops"] * 1000 + ["x"]},
            "too_many_ops",
        ),
        signed_case("signed payload with an op lacking key", {**base, "ops": [{"op": "delete"}]}, "bad_changeset"),
        signed_case(
            "signed payload whose seq has 5000 digits",
            json.dumps({**base, "seq": 0}, sort_keys=True).replace('"seq": 0', '"seq": 1' + "0" * 4999).encode(),
            "int_out_of_range",
        ),
    ]
    write(
        "json.json",
        {"max_depth": 32, "reason_order": list(jsonc.REASONS), "cases": cases, "changeset_envelopes": envelopes},
    )


def load_vector(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def peer_request_vectors() -> None:
    from pocsync.core.peerauth import sign_request

    m = load_vector("manifest.json")
    ts = 1_763_800_000_000
    body = b""
    path = "/v1/peer/changesets?after=0&limit=500&origin=eu"
    header = sign_request(
        node="eu", keyid="eu:k1", key=ed("eu:k1"), target="un", method="GET", path=path, body=body, now_ms=ts
    )
    other = sign_request(
        node="eu", keyid="eu:k1", key=ed("eu:k1"), target="osce", method="GET", path=path, body=body, now_ms=ts
    )
    posted = sign_request(
        node="eu",
        keyid="eu:k1",
        key=ed("eu:k1"),
        target="un",
        method="POST",
        path="/v1/peer/poke",
        body=b'{"why":"edit"}',
        now_ms=ts,
    )
    base = {"method": "GET", "path": path, "body_hex": "", "me": "un", "max_age_ms": 60_000}

    def raw_request(payload: bytes) -> str:  # a validly signed request whose payload breaks §13.2
        env = dsse.sign("application/vnd.pocsync.peer-request+json", payload, "eu:k1", ed("eu:k1"))
        return "Pocsync " + base64.b64encode(env.to_bytes()).decode()

    write(
        "peer_request.json",
        {
            "manifest_vector": "manifest.json",
            "manifest_id": m["id"],
            "cases": [
                {"name": "good", **base, "authorization": header, "now_ms": ts + 1_000, "expect": None},
                {
                    "name": "good, clock of the peer 60 s behind",
                    **base,
                    "authorization": header,
                    "now_ms": ts - 60_000,
                    "expect": None,
                },
                {
                    "name": "good POST with a body",
                    **base,
                    "method": "POST",
                    "path": "/v1/peer/poke",
                    "body_hex": b'{"why":"edit"}'.hex(),
                    "authorization": posted,
                    "now_ms": ts,
                    "expect": None,
                },
                {
                    "name": "body changed",
                    **base,
                    "method": "POST",
                    "path": "/v1/peer/poke",
                    "body_hex": b'{"why":"other"}'.hex(),
                    "authorization": posted,
                    "now_ms": ts,
                    "expect": "bad_request",
                },
                {"name": "wrong target", **base, "authorization": other, "now_ms": ts, "expect": "wrong_target"},
                {
                    "name": "stale (61 s old)",
                    **base,
                    "authorization": header,
                    "now_ms": ts + 61_000,
                    "expect": "stale_request",
                },
                {
                    "name": "other path",
                    **base,
                    "path": "/v1/peer/heads",
                    "authorization": header,
                    "now_ms": ts,
                    "expect": "bad_request",
                },
                {"name": "unsigned", **base, "authorization": None, "now_ms": ts, "expect": "unsigned_request"},
                {
                    "name": "other scheme",
                    **base,
                    "authorization": "Bearer abc",
                    "now_ms": ts,
                    "expect": "unsigned_request",
                },
                {
                    "name": "white space after the base64",
                    **base,
                    "authorization": header + " ",
                    "now_ms": ts,
                    "expect": "unsigned_request",
                },
                {
                    "name": "two spaces after the scheme",
                    **base,
                    "authorization": header.replace(" ", "  ", 1),
                    "now_ms": ts,
                    "expect": "unsigned_request",
                },
                {
                    "name": "signed payload that is a list",
                    **base,
                    "authorization": raw_request(b"[]"),
                    "now_ms": ts,
                    "expect": "bad_request",
                },
                {
                    "name": "signed payload with a float ts (a §2 reason)",
                    **base,
                    "authorization": raw_request(b'{"ts":1.5}'),
                    "now_ms": ts,
                    "expect": "bad_request",
                },
            ],
        },
    )


def scenario_vectors() -> None:
    scopes = {"eu": ["DEU", "FRA", "ITA"], "osce": ["DEU", "FRA", "ITA", "UKR"], "un": "all"}
    m1 = signed(federation(scopes), ["root"])
    write(
        "federation.json",
        {
            "description": "manifest v1 of the scenario vectors (eu, osce, un)",
            "root_seed_hex": seed("root").hex(),
            "envelope": m1.to_bytes().decode(),
            "id": m1.id,
        },
    )
    # merge conflicts between origins
    eu, osce, un = Chain("eu"), Chain("osce"), Chain("un")
    cs = [
        eu.sign(
            "1763800000100-0000",
            [
                {"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")},
                {"op": "put", "key": "FRA/diplomatic", "entry": entry("FRA/diplomatic")},
                {"op": "withdraw", "key": "ITA/diplomatic"},
            ],
            label="eu#1 puts DEU/technical and FRA/diplomatic, withdraws ITA/diplomatic",
        ),
        osce.sign(
            "1763800000100-0000",
            [
                {
                    "op": "put",
                    "key": "DEU/technical",
                    "entry": entry("DEU/technical", organisation="OSCE view (fictional)"),
                }
            ],
            label="osce#1 puts DEU/technical at the same hlc: the greater origin id wins the tie",
        ),
        osce.sign(
            "1763800000200-0000",
            [
                {"op": "put", "key": "FRA/diplomatic", "entry": entry("FRA/diplomatic")},
                {"op": "put", "key": "ITA/diplomatic", "entry": entry("ITA/diplomatic")},
                {"op": "put", "key": "UKR/technical", "entry": entry("UKR/technical")},
            ],
            label="osce#2 puts FRA/diplomatic over eu's; puts ITA/diplomatic after eu's withdrawal",
        ),
        osce.sign(
            "1763800000300-0000",
            [{"op": "delete", "key": "FRA/diplomatic"}],
            label="osce#3 deletes FRA/diplomatic: eu's older put, still live, wins again",
        ),
        un.sign(
            "1763800000150-0000",
            [
                {"op": "withdraw", "key": "UKR/technical"},
                {"op": "put", "key": "JPN/technical", "entry": entry("JPN/technical")},
            ],
            label="un#1 withdraws UKR/technical before osce's later put (the put wins)",
        ),
        un.sign(
            "1763800000400-0000",
            [
                {"op": "withdraw", "key": "JPN/technical"},
                {"op": "put", "key": "JPN/technical", "entry": entry("JPN/technical")},
            ],
            label="un#2 withdraws then puts JPN/technical at one hlc: the greater op index wins",
        ),
    ]
    scenario("merge.json", "merge conflicts between origins (PROTOCOL.md §9)", [m1], cs)

    # equivocation
    eu = Chain("eu")
    c1 = eu.sign("1763800000100-0000", [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")}])
    c2 = eu.sign("1763800000200-0000", [{"op": "put", "key": "FRA/technical", "entry": entry("FRA/technical")}])
    prev2 = eu.prev
    c3a = eu.sign("1763800000300-0000", [{"op": "delete", "key": "DEU/technical"}], label="eu#3a")
    eu.seq, eu.prev = 2, prev2
    c3b = eu.sign(
        "1763800000300-0001", [{"op": "put", "key": "ITA/technical", "entry": entry("ITA/technical")}], label="eu#3b"
    )
    c4 = eu.sign("1763800000400-0000", [{"op": "delete", "key": "FRA/technical"}], label="eu#4 (after 3b)")
    proof = {"type": "pocsync.proof/v1", "origin": "eu", "seq": 3, "a": c3a["envelope"], "b": c3b["envelope"]}
    scenario(
        "equivocation.json",
        "two valid change-sets of eu at seq 3: a proof; eu's ops from seq 3 on have no "
        "effect on any branch (PROTOCOL.md §11)",
        [m1],
        [c1, c2, c3a, c3b, c4],
        proof=proof,
    )

    # equivocation found by what a node holds, not only by its log (§8 step 6): eu forks at seq 2 and again at
    # seq 3 on the branch of seq 2 that is NOT logged here (2b arrives first); osce signs a second seq 2 with a
    # wrong prev that arrives before its good one.  Both are proofs in every delivery order.
    eu, osce = Chain("eu"), Chain("osce")
    b1 = eu.sign("1763800000100-0000", [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")}])
    prev1 = eu.prev
    b2a = eu.sign(
        "1763800000200-0000", [{"op": "put", "key": "FRA/technical", "entry": entry("FRA/technical")}], label="eu#2a"
    )
    prev2a = eu.prev
    eu.seq, eu.prev = 1, prev1
    b2b = eu.sign("1763800000200-0001", [{"op": "delete", "key": "DEU/technical"}], label="eu#2b (logged: first)")
    eu.seq, eu.prev = 2, prev2a
    b3a = eu.sign(
        "1763800000300-0000",
        [{"op": "delete", "key": "FRA/technical"}],
        label="eu#3a (after 2a): prev_mismatch here, kept as evidence",
    )
    eu.seq, eu.prev = 2, prev2a
    b3b = eu.sign(
        "1763800000300-0001",
        [{"op": "put", "key": "ITA/technical", "entry": entry("ITA/technical")}],
        label="eu#3b (after 2a): a proof at seq 3 with the held 3a",
    )
    o1 = osce.sign("1763800000100-0000", [{"op": "put", "key": "UKR/technical", "entry": entry("UKR/technical")}])
    o2bad = osce.sign(
        "1763800000200-0000",
        [{"op": "delete", "key": "UKR/technical"}],
        prev="sha256:" + "2" * 64,
        label="osce#2 with a wrong prev, first: prev_mismatch, kept as evidence",
    )
    osce.seq, osce.prev = 1, o1["id"]
    o2 = osce.sign(
        "1763800000200-0001",
        [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")}],
        label="osce#2 chaining: a proof at seq 2 with the held one (its put has no effect)",
    )
    scenario(
        "equivocation_held.json",
        "equivocation found against change-sets held outside the log: forks on a "
        "branch not logged and a second seq with a wrong prev arriving first (PROTOCOL.md §8 step 6, §11)",
        [m1],
        [b1, b2b, b2a, b3a, b3b, o1, o2bad, o2],
    )

    # chain-segment restart: eu lost its log after seq 2; the root declares a restart at seq 5 with key k2
    eu = Chain("eu")
    r1 = eu.sign("1763800000100-0000", [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")}])
    r2 = eu.sign("1763800000200-0000", [{"op": "put", "key": "FRA/technical", "entry": entry("FRA/technical")}])
    m2 = signed(
        mf.restart_chain(
            mf.next_version(m1.payload), "eu", name="k2", public=ed25519_public_b64(ed("eu:k2")), from_seq=5, prev=None
        ),
        ["root"],
    )
    r5 = eu.sign(
        "1763800000500-0000",
        [{"op": "put", "key": "ITA/technical", "entry": entry("ITA/technical")}],
        seq=5,
        prev=None,
        key="k2",
        manifest=2,
        label="eu#5 starts segment 5 (prev null, key k2)",
    )
    r6 = eu.sign("1763800000600-0000", [{"op": "delete", "key": "DEU/technical"}], key="k2", manifest=2)
    bad = Chain("eu")
    bad.seq, bad.prev = 4, r2["id"]
    r5bad = bad.sign(
        "1763800000500-0001",
        [{"op": "delete", "key": "FRA/technical"}],
        key="k2",
        manifest=2,
        label="eu#5' links to seq 2 where the segment declares prev null: bad_prev",
    )
    r3old = Chain("eu")
    r3old.seq, r3old.prev = 2, r2["id"]
    r3k1 = r3old.sign(
        "1763800000300-0000",
        [{"op": "delete", "key": "FRA/technical"}],
        label="eu#3 signed with k1, which v2 ends at seq 4: still valid, chained to seq 2",
    )
    scenario("restart.json", "a chain restart at seq 5 (PROTOCOL.md §6, §8 step 6)", [m1, m2], [r1, r2, r3k1, r5, r6])
    scenario("restart_bad_prev.json", "a segment start whose prev is not the declared one", [m1, m2], [r1, r2, r5bad])

    # scope steps
    p = mf.set_scope(m1.payload, "eu", states=["FRA"], from_seq=3)
    m_scope = signed(p, ["root"])
    eu = Chain("eu")
    s1 = eu.sign(
        "1763800000100-0000",
        [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")}],
        label="eu#1 DEU in scope",
    )
    s2 = eu.sign(
        "1763800000200-0000",
        [{"op": "put", "key": "UKR/technical", "entry": entry("UKR/technical")}],
        label="eu#2 UKR out of scope",
    )
    s3 = eu.sign(
        "1763800000300-0000",
        [
            {"op": "put", "key": "FRA/technical", "entry": entry("FRA/technical")},
            {"op": "delete", "key": "DEU/technical"},
        ],
        label="eu#3 scope is now FRA only: the FRA put applies, the DEU delete is out of scope",
    )
    scenario(
        "scope.json",
        "scope steps: the scope at a change-set's seq decides (PROTOCOL.md §6, §8.2)",
        [m_scope],
        [s1, s2, s3],
    )

    # feature gating: the toy op kind `note`
    m_feat = signed(mf.set_features(mf.next_version(m1.payload), ["toy-note"]), ["root"])
    eu = Chain("eu")
    f1 = eu.sign(
        "1763800000100-0000",
        [
            {"op": "note", "key": "DEU", "text": "Exercise on Tuesday (fictional)"},
            {"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical")},
        ],
    )
    osce = Chain("osce")
    f2 = osce.sign(
        "1763800000200-0000",
        [
            {"op": "note", "key": "DEU", "text": "Later note (fictional)"},
            {"op": "note", "key": "UKR", "text": "x" * 281},
            {"op": "note", "key": "deu", "text": "bad key"},
        ],
    )
    f3 = eu.sign(
        "1763800000300-0000",
        [{"op": "note", "key": "UKR", "text": "out of scope"}, {"op": "vote", "key": "DEU", "text": "no such op kind"}],
    )
    scenario("feature_off.json", "op kind `note` while the manifest does not list feature toy-note", [m1], [f1, f2, f3])
    scenario(
        "feature_on.json", "the same change-sets once manifest v2 lists feature toy-note", [m1, m_feat], [f1, f2, f3]
    )

    # lone surrogate: a valid signature over a payload whose entry holds "\ud800"
    text = (
        b'{"author":"staff@eu.example.org","hlc":"1763800000100-0000","manifest":1,"ops":[{"entry":'
        b'{"emails":["cert-deu@example.org"],"holder_epoch":"1763800000100-0000","kind":"technical",'
        b'"notes":"\\ud800","organisation":"Example CSIRT (fictional)","state":"DEU"},"key":"DEU/technical",'
        b'"op":"put"}],"origin":"eu","prev":null,"seq":1,"type":"pocsync.changeset/v1"}'
    )
    env = dsse.sign(dsse.CHANGESET_TYPE, text, "eu:k1", ed("eu:k1")).to_bytes()
    eu = Chain("eu")
    eu.seq, eu.prev = 0, None
    ok_osce = Chain("osce").sign(
        "1763800000200-0000", [{"op": "put", "key": "FRA/technical", "entry": entry("FRA/technical")}]
    )
    scenario(
        "surrogate.json",
        "a signed change-set whose entry holds an unpaired surrogate escape: quarantined "
        "lone_surrogate after its signature verified; other change-sets are unaffected",
        [m1],
        [
            {
                "label": "eu#1 with \\ud800",
                "id": csmod.changeset_id(text),
                "payload": text.decode(),
                "envelope": env.decode(),
            },
            ok_osce,
        ],
    )


def check_vectors() -> None:
    """Communication checks and confirmations (PROTOCOL.md §15): op rules, scope, registers; channel ids; overdue."""
    from pocsync.core import checks

    scopes = {"eu": ["DEU", "FRA", "ITA"], "osce": ["DEU", "FRA", "ITA", "UKR"], "un": "all"}
    m1 = signed(federation(scopes), ["root"])
    p2 = mf.set_features(mf.next_version(m1.payload), ["comm-checks", "freshness"])
    p2 = mf.set_policy(
        p2, "freshness", {"confirm_days": 365, "verify_days": 180, "networks": {"csirt-net": {"verify_days": 90}}}
    )
    m2 = signed(p2, ["root"])
    email = checks.channel_id("email", "cert-deu@example.org")
    phone = checks.channel_id("phone", "+493012345678")

    def chk(key: str, channel: str, result: str, campaign: object = None, **more: object) -> dict:
        return {"op": "check", "key": key, "channel": channel, "result": result, "campaign": campaign, **more}

    eu, osce, un = Chain("eu"), Chain("osce"), Chain("un")
    cs = [
        eu.sign(
            "1763800000100-0000",
            [
                chk("DEU/technical", email, "sent", "eu-q4", deadline_ms=1763800172800000),
                chk("DEU/technical", phone, "answered"),
            ],
            label="eu#1 sends a campaign check to DEU's email; records a phone answer",
        ),
        eu.sign(
            "1763800000200-0000",
            [
                chk("DEU/technical", email, "acknowledged", "eu-q4", response_seconds=3600),
                {"op": "confirm", "key": "DEU/technical"},
            ],
            label="eu#2 the email check is acknowledged; eu confirms DEU/technical",
        ),
        osce.sign(
            "1763800000300-0000",
            [chk("DEU/technical", email, "no_response", "osce-q4"), chk("DEU/technical", phone, "no_answer")],
            label="osce#1 later negative results: the latest results change, the verified registers stay",
        ),
        osce.sign(
            "1763800000400-0000",
            [
                chk("UKR/technical", email, "bounced", "osce-q4", smtp_code=550),
                chk("JPN/technical", email, "acknowledged", None, response_seconds=5),
                {"op": "confirm", "key": "JPN/technical"},
                chk("UKR/technical", phone, "acknowledged", None, response_seconds=5),
                chk("UKR/technical", email, "bounced", None, smtp_code=250),
                chk("UKR/technical", email, "sent", None),
                chk("UKR/technical", email, "sent", None, deadline_ms=1, smtp_code=550),
                chk("UKR/technical", "email:" + "A" * 64, "sent", None, deadline_ms=1),
                chk("UKR/technical", email, "sent", "Q4", deadline_ms=1),
                chk("UKR", email, "sent", None, deadline_ms=1),
                {"op": "confirm", "key": "UKR/technical"},
            ],
            label="osce#2 a bounce with its SMTP code; JPN is out of osce's scope; rules refuse the rest; "
            "osce confirms UKR/technical",
        ),
        un.sign(
            "1763800000300-0000",
            [chk("DEU/technical", email, "acknowledged", "un-q4", response_seconds=7)],
            label="un#1 acknowledged at the same hlc as osce's no_response: the greater origin id (un) wins",
        ),
    ]
    scenario(
        "checks.json",
        "check (comm-checks) and confirm (freshness) ops: registers check, verified, campaign, "
        "confirm (PROTOCOL.md §15); the same change-sets under v1 are refused feature_off",
        [m1, m2],
        cs,
        expect_v1=run_scenario([m1], cs),
        channel_ids=[
            {"kind": k, "value": v, "id": checks.channel_id(k, v)}
            for k, v in (
                ("email", "cert-deu@example.org"),
                ("email", "  CERT-DEU@Example.ORG\n"),
                ("email", "Ünï@example.org"),
                ("phone", "+493012345678"),
                ("phone", "+49 30 1234-5678"),
                ("phone", "(0)30 1234"),
            )
        ],
    )
    day = checks.DAY_MS
    t0 = 1763800000000
    h = lambda ms: f"{ms:013d}-0000"  # noqa: E731
    pol = p2["policy"]["freshness"]
    cases = []
    for name, networks, modified, confirmed, verified, now in [
        ("fresh", [], t0, None, t0, t0 + 10 * day),
        ("confirmation overdue: 365 days after last_modified", [], t0, None, t0 + 300 * day, t0 + 365 * day + 1),
        ("exactly at the period: not overdue", [], t0, None, t0 + 300 * day, t0 + 365 * day),
        ("a confirmation restarts the period", [], t0, t0 + 100 * day, t0 + 300 * day, t0 + 400 * day),
        ("never verified: counted from last_modified", [], t0, None, None, t0 + 180 * day + 1),
        ("a network's stricter verify_days", ["csirt-net"], t0, None, t0, t0 + 90 * day + 1),
        ("another network: the federation's values", ["other-net"], t0, None, t0, t0 + 90 * day + 1),
        ("both overdue", [], t0, None, None, t0 + 400 * day),
    ]:
        f = {
            "last_modified": h(modified),
            "last_confirmed": h(confirmed) if confirmed else None,
            "last_verified": h(verified) if verified else None,
        }
        od = checks.overdue({"networks": networks}, f, pol, now_ms=now)
        cases.append({"name": name, "networks": networks, **f, "now_ms": now, "expect": od["reasons"] if od else []})
    write(
        "freshness.json",
        {"description": "overdue judgement under policy.freshness (PROTOCOL.md §15.5)", "policy": pol, "cases": cases},
    )


def held_vectors() -> None:
    """Held contact changes (PROTOCOL.md §16): one scenario, with the lines after each change-set."""
    import base64 as b64mod

    from pocsync.core import held

    scopes = {"eu": ["DEU", "FRA", "ITA"], "osce": ["DEU", "FRA", "ITA", "UKR"], "un": "all"}
    m1 = signed(federation(scopes), ["root"])
    alice = ed("staff:alice")
    policy = {
        "hold_seconds": 60,
        "since": "1763800000050-0000",
        "staff_keys": {"eu": [{"name": "alice", "public": ed25519_public_b64(alice)}]},
    }
    m2 = signed(
        mf.set_policy(mf.set_features(mf.next_version(m1.payload), ["held-changes"]), "held-changes", policy), ["root"]
    )
    eu, osce, un = Chain("eu"), Chain("osce"), Chain("un")

    def h(n: int) -> str:
        return f"{1763800000000 + n:013d}-0000"

    def put(key: str, **over: object) -> dict:
        return {"op": "put", "key": key, "entry": entry(key, **over)}

    def hold(kind: str, key: str, ref: str, **extra: object) -> dict:
        return {"op": kind, "key": key, "put": ref, **extra}

    def staff(key: str, ref: str, name: str = "alice", origin: str = "eu", signer=alice) -> dict:
        return {
            "origin": origin,
            "name": name,
            "sig": b64mod.b64encode(signer.sign(held.staff_message(key, ref))).decode(),
        }

    cs = [
        eu.sign(
            h(0),
            [
                put("DEU/technical"),
                put("DEU/diplomatic", person="A. Example"),
                put("FRA/technical"),
                put("FRA/diplomatic"),
            ],
            label="eu#1 first nominations (hlc below policy.since: never held)",
        )
    ]
    cs.append(eu.sign(h(100), [put("ITA/technical")], label="eu#2 a first nomination: not held"))
    cs.append(
        eu.sign(
            h(1000),
            [put("DEU/technical", emails=["cert-deu-new@example.org"])],
            label="eu#3 changes the DEU/technical mailbox: held",
        )
    )
    ref_t = f"{cs[-1]['id']}#0"
    cs.append(
        eu.sign(
            h(1100),
            [put("DEU/technical", emails=["cert-deu-new@example.org"], notes="x")],
            label="eu#4 supersedes its own held put (still held: judged against the last winner)",
        )
    )
    ref_t = f"{cs[-1]['id']}#0"
    cs.append(
        eu.sign(h(1200), [hold("release", "DEU/technical", ref_t)], label="eu#5 releases with no notice: no effect")
    )
    cs.append(un.sign(h(2000), [hold("notice", "DEU/technical", ref_t)], label="un#1 notice: the hold starts"))
    cs.append(
        eu.sign(
            h(3000),
            [hold("notice", "DEU/technical", ref_t), hold("approve", "DEU/technical", ref_t)],
            label="eu#6 a notice and an approval by the origin itself: no effect",
        )
    )
    cs.append(
        un.sign(
            h(61999),
            [hold("release", "DEU/technical", ref_t)],
            label="un#2 release 1 ms before notice + hold: no effect",
        )
    )
    cs.append(
        un.sign(
            h(62000),
            [hold("release", "DEU/technical", ref_t)],
            label="un#3 release at notice + hold: the put takes effect, ranked at this hlc",
        )
    )
    cs.append(
        eu.sign(
            h(63000),
            [put("DEU/diplomatic", person="B. Example")],
            label="eu#7 changes the person of DEU/diplomatic: held",
        )
    )
    ref_d = f"{cs[-1]['id']}#0"
    cs.append(osce.sign(h(64000), [hold("object", "DEU/diplomatic", ref_d)], label="osce#1 objects"))
    cs.append(
        osce.sign(
            h(65000),
            [hold("approve", "DEU/diplomatic", ref_d)],
            label="osce#2 approves after the objection: no effect (not a UN node)",
        )
    )
    cs.append(
        un.sign(
            h(66000), [hold("approve", "DEU/diplomatic", ref_d)], label="un#4 a UN approval overrides the objection"
        )
    )
    cs.append(
        eu.sign(
            h(67000), [put("FRA/technical", phones=["+33100000000"])], label="eu#8 adds a phone to FRA/technical: held"
        )
    )
    ref_f = f"{cs[-1]['id']}#0"
    cs.append(
        eu.sign(
            h(67500),
            [
                hold(
                    "approve",
                    "FRA/technical",
                    ref_f,
                    staff=staff("FRA/technical", ref_f, name="alice", signer=ed("staff:mallory")),
                )
            ],
            label="eu#9 a staff signature by an unlisted key: refused bad_staff_signature",
        )
    )
    cs.append(
        eu.sign(
            h(68000),
            [hold("approve", "FRA/technical", ref_f, staff=staff("FRA/technical", ref_f))],
            label="eu#10 approval with alice's listed staff key: takes effect",
        )
    )
    cs.append(
        eu.sign(
            h(69000),
            [{"op": "withdraw", "key": "DEU/technical"}, put("FRA/diplomatic", notes="Office hours (fictional)")],
            label="eu#11 a withdrawal and a change of a non-contact field: not held",
        )
    )
    cs.append(
        eu.sign(
            h(70000),
            [put("DEU/technical", emails=["cert-deu-third@example.org"])],
            label="eu#12 a put after the withdrawal with other channels: held",
        )
    )
    ref_t2 = f"{cs[-1]['id']}#0"
    cs.append(
        un.sign(
            h(71000),
            [hold("notice", "DEU/technical", ref_t2), hold("notice", "DEU/technical", "sha256:00#0")],
            label="un#5 notice (pending with a notice at the end); a malformed ref: bad_hold",
        )
    )
    cs.append(
        osce.sign(
            h(72000),
            [put("FRA/diplomatic", emails=["other@example.org"])],
            label="osce#3 another origin changes FRA/diplomatic's mailbox: held",
        )
    )
    ref_o = f"{cs[-1]['id']}#0"
    cs.append(
        un.sign(
            h(73000),
            [hold("object", "FRA/diplomatic", ref_o), hold("notice", "JPN/technical", ref_o)],
            label="un#6 objects (an objected change at the end); notice on a key with no such put",
        )
    )
    steps = []
    from pocsync.core.replica import MemoryState, Replica

    rep = Replica(MemoryState(), m1)
    rep.reevaluate(now_ms=NOW_MS, manifest=m2)
    for c in cs:
        rep.receive(c["envelope"].encode(), now_ms=NOW_MS)
        steps.append({"label": c["label"], "lines": digest_lines(rep.state.digest_view()).decode()})
    scenario(
        "held.json",
        "held contact changes (PROTOCOL.md §16): hold, notice, releases, self-approval, "
        "objection and UN override, staff key, withdrawal; `steps` gives the lines after each change-set "
        "delivered in the listed order",
        [m1, m2],
        cs,
        steps=steps,
        staff_seed_hex=seed("staff:alice").hex(),
    )


def manifest_step_vectors() -> None:
    """Version steps with thresholds: N -> N+1 needs threshold(N) roots of N and threshold(N+1) of N+1."""
    scopes = {"eu": ["DEU"]}
    v1p = federation(scopes, roots=["rA", "rB", "rC"], threshold=2)
    v1 = signed(v1p, ["rA", "rB"])
    v2p = mf.set_threshold(
        mf.add_root(
            mf.remove_root(mf.next_version(v1p), mf.root_keyid(ed25519_public_b64(ed("rC")))),
            ed25519_public_b64(ed("rD")),
        ),
        2,
    )
    v3p = mf.next_version(v2p)
    v2_unsupported = mf.set_features(mf.next_version(v1p), ["future-feature"])
    cases = [
        {"name": "v1 with 2 of its 3 roots", "installed": [], "candidate": signed(v1p, ["rA", "rB"]), "expect": None},
        {
            "name": "v1 with 1 of its roots (threshold 2)",
            "installed": [],
            "candidate": signed(v1p, ["rA"]),
            "expect": "threshold_not_met",
        },
        {
            "name": "v2 (rC out, rD in) by rA, rB (old) and rA, rD (new)",
            "installed": [v1],
            "candidate": signed(v2p, ["rA", "rB", "rD"]),
            "expect": None,
        },
        {
            "name": "v2 by rA and rD only: 1 root of v1",
            "installed": [v1],
            "candidate": signed(v2p, ["rA", "rD"]),
            "expect": "threshold_not_met",
        },
        {
            "name": "v2 by rB and rC only: 1 root of v2",
            "installed": [v1],
            "candidate": signed(v2p, ["rB", "rC"]),
            "expect": "threshold_not_met",
        },
        {
            "name": "v3 while holding v1",
            "installed": [v1],
            "candidate": signed(v3p, ["rA", "rB", "rD"]),
            "expect": "manifest_gap",
        },
        {
            "name": "v1 again while holding v2",
            "installed": [v1, signed(v2p, ["rA", "rB", "rD"])],
            "candidate": signed(v1p, ["rA", "rB"]),
            "expect": "manifest_rollback",
        },
        {
            "name": "v2 again (same payload, other signatures) while holding v2",
            "installed": [v1, signed(v2p, ["rA", "rB", "rD"])],
            "candidate": signed(v2p, ["rA", "rB"]),
            "expect": "already_installed",
        },
        {
            "name": "another v2 (other payload) while holding v2",
            "installed": [v1, signed(v2p, ["rA", "rB", "rD"])],
            "candidate": signed(mf.set_threshold(v2p, 1), ["rA", "rB", "rD"]),
            "expect": "manifest_rollback",
        },
        {
            "name": "expired v2",
            "installed": [v1],
            "candidate": signed(mf.set_expiry(v2p, 1_700_000_000), ["rA", "rB", "rD"]),
            "expect": "manifest_expired",
        },
        {
            "name": "v3 with a feature this software lacks, expired, while holding v1 (the feature is checked first)",
            "installed": [v1],
            "candidate": signed(mf.set_expiry(mf.set_features(v3p, ["future-feature"]), 1_700_000_000), ["rA", "rB"]),
            "expect": "unsupported_feature",
        },
        {
            "name": "v2 listing a feature this software lacks",
            "installed": [v1],
            "candidate": signed(v2_unsupported, ["rA", "rB"]),
            "expect": "unsupported_feature",
        },
    ]
    write(
        "manifest_steps.json",
        {
            "now_s": 1_800_000_000,
            "software_features": sorted(opkinds_features()),
            "root_seeds_hex": {r: seed(r).hex() for r in ("rA", "rB", "rC", "rD")},
            "cases": [
                {
                    "name": c["name"],
                    "installed": [m.to_bytes().decode() for m in c["installed"]],
                    "candidate": c["candidate"].to_bytes().decode(),
                    "candidate_id": c["candidate"].id,
                    "expect": c["expect"],
                }
                for c in cases
            ],
        },
    )


def opkinds_features() -> set:
    from pocsync.core import opkinds

    return set(opkinds.FEATURES)


def entry_vectors() -> None:
    """Receipt rules of entries (PROTOCOL.md §7.1, docs/entry.schema.json): each case with the reason."""
    from pocsync.core import model

    H = "1763800000500-0000"
    d, t = entry("DEU/diplomatic"), entry("DEU/technical")
    full = {
        "state": "DEU",
        "kind": "diplomatic",
        "organisation": "Example Ministry (fictional)",
        "position": "Cyber coordinator",
        "person": "A. Example",
        "emails": ["cyber@example.org"],
        "phones": ["+493012345678"],
        "available_24_7": False,
        "timezone": "Europe/Berlin",
        "languages": ["de", "en"],
        "secure_channels": [{"type": "openpgp", "fingerprint": "AB12", "expires": "2027-01-31"}],
        "networks": ["example-net"],
        "holder_epoch": "1763800000100-0000",
        "notes": "Fictional.",
        "x-regional": {"kept": [1, 2]},
        "public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEU/NfCxYJKwYBBAHaRw8BAQdAPwmJlL3ZFu1AUxl5NOSofIBzOhKA1i+AEJku\n"
        "Q+47JAY=\n-----END PGP PUBLIC KEY BLOCK-----\n",  # RFC 9580 A.1 (a sample)
        "public_key_fingerprint": "C959BDBAFA32A2F89A153B678CFDE12197965A9A",
    }
    cases = [
        ("every field", "DEU/diplomatic", full),
        ("minimal diplomatic", "DEU/diplomatic", d),
        (
            "minimal technical with a phone only",
            "DEU/technical",
            {**{k: v for k, v in t.items() if k != "emails"}, "phones": ["+493012345678"]},
        ),
        (
            "null optional fields mean absent",
            "DEU/technical",
            {
                **t,
                "position": None,
                "person": None,
                "available_24_7": None,
                "notes": None,
                "timezone": None,
                "languages": None,
                "networks": None,
                "secure_channels": None,
                "phones": None,
            },
        ),
        ("null emails with a phone", "DEU/technical", {**t, "emails": None, "phones": ["+493012345678"]}),
        ("empty lists", "DEU/technical", {**t, "phones": [], "languages": [], "networks": [], "secure_channels": []}),
        ("holder_epoch equal to the change-set hlc", "DEU/technical", {**t, "holder_epoch": H}),
        ("unknown fields of any JSON type", "DEU/technical", {**t, "x": None, "y": [{"z": True}], "w": 3}),
        (
            "public_key and its fingerprint: no receipt rule (checked at the origin only)",
            "DEU/technical",
            {**t, "public_key": 42, "public_key_fingerprint": ["not", "hex"]},
        ),
        ("not an object", "DEU/technical", ["x"]),
        ("state missing", "DEU/technical", {k: v for k, v in t.items() if k != "state"}),
        ("state of another key", "DEU/technical", {**t, "state": "FRA"}),
        ("kind unknown", "DEU/technical", {**t, "kind": "military"}),
        ("kind of another key", "DEU/technical", {**t, "kind": "diplomatic"}),
        ("organisation missing", "DEU/technical", {k: v for k, v in t.items() if k != "organisation"}),
        ("organisation blank", "DEU/technical", {**t, "organisation": "  "}),
        ("organisation null", "DEU/technical", {**t, "organisation": None}),
        ("no email and no phone", "DEU/technical", {**t, "emails": []}),
        ("emails not a list", "DEU/technical", {**t, "emails": "cert@example.org"}),
        ("phones with a number", "DEU/technical", {**t, "phones": [4930]}),
        ("languages not a list of strings", "DEU/technical", {**t, "languages": [["en"]]}),
        ("networks not a list", "DEU/technical", {**t, "networks": {"a": 1}}),
        ("position not a string", "DEU/technical", {**t, "position": 1}),
        ("person not a string", "DEU/diplomatic", {**d, "person": ["A.", "Example"]}),
        ("timezone not a string", "DEU/technical", {**t, "timezone": 1}),
        ("notes not a string", "DEU/technical", {**t, "notes": {"x": 1}}),
        ("available_24_7 not a boolean", "DEU/technical", {**t, "available_24_7": "yes"}),
        ("secure_channels item not an object", "DEU/technical", {**t, "secure_channels": ["openpgp"]}),
        ("secure_channels not a list", "DEU/technical", {**t, "secure_channels": {"type": "openpgp"}}),
        ("person on a technical entry", "DEU/technical", {**t, "person": "A. Example"}),
        ("holder_epoch missing", "DEU/technical", {k: v for k, v in t.items() if k != "holder_epoch"}),
        ("holder_epoch not an hlc", "DEU/technical", {**t, "holder_epoch": "1763800000100"}),
        ("holder_epoch with a trailing newline", "DEU/technical", {**t, "holder_epoch": "1763800000100-0000\n"}),
        ("holder_epoch null", "DEU/technical", {**t, "holder_epoch": None}),
        ("holder_epoch after the change-set hlc", "DEU/technical", {**t, "holder_epoch": "1763800000500-0001"}),
        ("key not ISO3/kind", "DEU/tech", t),
        ("key with a trailing newline in the State", "DEU\n/technical", {**t, "state": "DEU\n"}),
        ("key in lower case", "deu/technical", {**t, "state": "deu"}),
    ]
    out = []
    for name, key, e in cases:
        try:
            model.check_structure(key, e, cs_hlc=H)
            reason = field = None
        except Exception as exc:  # EntryError
            reason, field = exc.reason, exc.detail.get("field")  # type: ignore[attr-defined]
        # The schema judges an entry alone: not its agreement with the key, nor holder_epoch against the hlc.
        applies = reason not in ("bad_key", "key_mismatch") and name != "holder_epoch after the change-set hlc"
        out.append({"name": name, "key": key, "entry": e, "reason": reason, "field": field, "schema_applies": applies})
    write("entries.json", {"cs_hlc": H, "schema": "docs/entry.schema.json", "cases": out})


def template_doc(tid: str = "request-for-information", version: int = 1, **over: object) -> dict:
    """A small template document (PROTOCOL.md §18.2), fictional wording."""
    names = ["subject", "urgency", "reply_by"]
    d = {
        "id": tid,
        "version": version,
        "purpose": "request_for_information",
        "schema": {
            "type": "object",
            "required": ["subject", "urgency"],
            "properties": {
                "subject": {"type": "string", "maxLength": 200, "pattern": "^[^\\[\\]]+$"},
                "urgency": {"type": "string", "enum": ["low", "high"]},
                "reply_by": {"type": "string", "format": "date-time"},
            },
        },
        "languages": {
            c: {
                "title": f"Request for information ({c})",
                "text": f"Please tell us more ({c}).",
                "fields": {n: {"label": f"{n} ({c})"} for n in names},
            }
            for c in ("en", "es", "fr")
        },
    }
    d["languages"]["fr"]["fields"]["urgency"]["options"] = {"low": "Faible", "high": "Élevée"}
    d.update(over)
    return d


def template_vectors() -> None:
    """§18: documents and patterns with their reasons; the op kind under the default and a policy."""
    import copy

    from pocsync.core import templates as tpl

    def case(name: str, doc: object, key: str = "request-for-information") -> dict:
        op = {"op": "template", "key": key, "template": doc}
        try:
            tpl.check_op(op)
            reason = None
        except EntryError as exc:
            reason = exc.reason
        return {"name": name, "op": op, "reason": reason}

    def mutate(fn) -> dict:
        d = copy.deepcopy(template_doc())
        fn(d)
        return d

    good = template_doc()
    cases = [
        case("valid", good),
        case("valid, version 2147483647", template_doc(version=2**31 - 1)),
        case("id differs from the key", good, key="other"),
        case("not an object", ["x"]),
        case("unknown member", template_doc(extra=True)),
        case("version 0", template_doc(version=0)),
        case("version true", template_doc(version=True)),
        case("unknown purpose", template_doc(purpose="gossip")),
        case("no schema", mutate(lambda d: d.pop("schema"))),
        case("$ref in the schema", mutate(lambda d: d["schema"].update({"$ref": "https://example.org/s.json"}))),
        case("$ref in a property", mutate(lambda d: d["schema"]["properties"]["subject"].update({"$ref": "#/x"}))),
        case("schema type array", mutate(lambda d: d["schema"].update({"type": "array"}))),
        case("property type number", mutate(lambda d: d["schema"]["properties"]["subject"].update({"type": "number"}))),
        case("required names no property", mutate(lambda d: d["schema"].update({"required": ["subject", "nope"]}))),
        case("maxLength 10001", mutate(lambda d: d["schema"]["properties"]["subject"].update({"maxLength": 10001}))),
        case(
            "maxLength on boolean",
            mutate(lambda d: d["schema"]["properties"].update({"subject": {"type": "boolean", "maxLength": 3}})),
        ),
        case(
            "enum of mixed types", mutate(lambda d: d["schema"]["properties"]["urgency"].update({"enum": ["low", 2]}))
        ),
        case("format uri", mutate(lambda d: d["schema"]["properties"]["reply_by"].update({"format": "uri"}))),
        case(
            "nested quantifier", mutate(lambda d: d["schema"]["properties"]["subject"].update({"pattern": "^(a+)+$"}))
        ),
        case("missing language es", mutate(lambda d: d["languages"].pop("es"))),
        case("missing label", mutate(lambda d: d["languages"]["fr"]["fields"].pop("urgency"))),
        case("extra label", mutate(lambda d: d["languages"]["en"]["fields"].update({"x": {"label": "x"}}))),
        case("blank title", mutate(lambda d: d["languages"]["en"].update({"title": "\u3000 "}))),
        case("help null", mutate(lambda d: d["languages"]["en"]["fields"]["subject"].update({"help": None}))),
        case(
            "options without enum",
            mutate(lambda d: d["languages"]["en"]["fields"]["subject"].update({"options": {"a": "A"}})),
        ),
        case(
            "options missing a value",
            mutate(lambda d: d["languages"]["es"]["fields"]["urgency"].update({"options": {"low": "Baja"}})),
        ),
        case("language code EN", mutate(lambda d: d["languages"].update({"EN": d["languages"]["en"]}))),
        case(
            "over 65536 bytes of canonical JSON",
            mutate(
                lambda d: d["languages"].update(
                    {c: {**d["languages"]["en"], "text": "x" * 20000} for c in ("de", "it", "pt", "ru")}
                )
            ),
        ),
    ]
    patterns = [
        "^[A-Z]{3}-[0-9]{4,6}$",
        "[a-z0-9._-]+",
        "\\d+(\\.\\d+)?",
        "(ab|cd)",
        "(ab)+",
        "[+--]",
        "[--a]",
        "^$",
        "a|",
        "x{0}",
        "\\$\\^",
        "[a\\-z]",
        "((((a))))",
        "(a+)+",
        "(a|b)*",
        "a**",
        "a+?",
        "a{2,1}",
        "a{1001}",
        "a{,3}",
        "(?=a)",
        "(?:a)",
        "\\1",
        "\\b",
        "a\\-b",
        "[--!]",
        "[a-\\d]",
        "[]",
        "[a",
        "(a",
        "a)",
        "a$b",
        "b^",
        "]",
        "}",
        "{",
        "é",
        "(((((a)))))",
        "a?" * 11,
        "x" * 201,
    ]
    write(
        "templates.json",
        {
            "description": "template documents (PROTOCOL.md §18.2) as ops with the expected reason, and patterns "
            "(§18.3) with whether they are in the safe subset",
            "cases": cases,
            "patterns": [{"pattern": p, "safe": tpl.pattern_problem(p) is None} for p in patterns],
        },
    )

    m1 = signed(federation({"eu": ["DEU", "FRA", "ITA"], "osce": ["DEU", "FRA", "ITA", "UKR"], "un": "all"}), ["root"])
    on = signed(mf.set_features(mf.next_version(m1.payload), ["templates"]), ["root"])
    pubs = signed(mf.set_policy(mf.next_version(on.payload), "templates", {"publishers": ["osce", "un"]}), ["root"])
    un, osce, eu = Chain("un"), Chain("osce"), Chain("eu")
    reply = template_doc("reply", purpose="reply")
    cs = [
        un.sign(
            "1763800000100-0000",
            [
                {"op": "template", "key": "request-for-information", "template": good},
                {"op": "template", "key": "reply", "template": reply},
            ],
            label="un#1 publishes request-for-information v1 and reply v1",
        ),
        osce.sign(
            "1763800000300-0000",
            [
                {"op": "template", "key": "request-for-information", "template": template_doc(version=2)},
                {"op": "template", "key": "reply", "template": reply},
            ],
            label="osce#1 publishes request-for-information v2, and reply v1 at a later hlc",
        ),
        eu.sign(
            "1763800000400-0000",
            [{"op": "template", "key": "request-for-information", "template": template_doc(version=9)}],
            label="eu#1, a regional node that is no publisher: out_of_scope",
        ),
        un.sign(
            "1763800000500-0000",
            [
                {"op": "template", "key": "request-for-information", "template": good},
                {"op": "template", "key": "Bad", "template": good},
                {"op": "template", "key": "x", "template": mutate(lambda d: d["languages"].pop("fr")) | {"id": "x"}},
            ],
            label="un#2 republishes v1 later (a lower version never wins), a bad key, a template without fr",
        ),
    ]
    scenario(
        "templates_on.json",
        "op kind `template` once manifest v2 lists feature templates: only the un node publishes (role un)",
        [m1, on],
        cs,
    )
    scenario(
        "templates_publishers.json",
        "the same change-sets under manifest v3, policy.templates.publishers "
        "[osce, un]: osce's version 2 wins over un's version 1; reply v1 at equal version goes to the later hlc",
        [m1, on, pubs],
        cs,
    )


def more_vectors() -> None:
    json_vectors()
    peer_request_vectors()
    scenario_vectors()
    held_vectors()
    manifest_step_vectors()
    entry_vectors()
    template_vectors()
    check_vectors()


if __name__ == "__main__":
    main()
    sealed_vector()
    more_vectors()
