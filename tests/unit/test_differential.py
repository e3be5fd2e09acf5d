"""Differential property tests: pocsync against the independent reading of PROTOCOL.md
(tests/independent/protocol.py), with docs/entry.schema.json (via `jsonschema`) as a third opinion.

Random and adversarial inputs — JSON texts (depth, duplicates, floats, big integers, surrogates,
byte-order marks, white space, escapes), change-set payloads signed with the vector keys (wrong
types in every field, extra and missing members, odd keys, hlc edges, scope edges, unknown ops and
features) and entries — must get the same decision and the same reason from both readings.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pocsync.core import envelope as dsse
from pocsync.core import jsonc, model
from pocsync.core import manifest as mf
from pocsync.core.merge import digest_lines
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import PocsyncError
from tests.independent import protocol as indep

ROOT = Path(__file__).parents[2]
V = ROOT / "tests" / "vectors"
SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "entry.schema.json").read_text()))
FEATURE_ON = json.loads((V / "feature_on.json").read_text())
MANIFESTS = FEATURE_ON["manifests"]  # v1: no features (federation.json); v2: toy-note
NOW_MS = FEATURE_ON["now_ms"]
CS_HLC = "1763800005000-0000"
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _seed(label: str) -> bytes:  # as tests/vectors/make_vectors.py
    return hashlib.sha256(b"pocsync test vector " + label.encode()).digest()


KEYS = {n: Ed25519PrivateKey.from_private_bytes(_seed(f"{n}:k1")) for n in ("eu", "osce", "un")}


def _reason(fn, *args, **kw) -> str | None:
    try:
        fn(*args, **kw)
    except (PocsyncError, indep.Reject, indep.Park) as exc:
        return exc.reason
    return None


# --- JSON texts ---------------------------------------------------------------------------------------
WS = st.sampled_from(["", "", " ", "\n", "\t", "\r\n", "  ", "\x0b", "\xa0", "\u2028", "\x0c"])
CHARS = st.characters(codec=None, exclude_categories=())  # includes lone surrogates (category Cs)


@st.composite
def json_string(draw) -> str:
    s = draw(
        st.text(
            CHARS | st.sampled_from(["\ud800", "\udc00", "\U0001f600", '"', "\\", "\x00", "\x1f", "\ufeff"]), max_size=6
        )
    )
    out = ['"']
    for ch in s:
        how = draw(st.integers(0, 3))
        if ch in '"\\' or ord(ch) < 0x20 and how != 3:
            out.append("\\u%04x" % ord(ch) if how == 1 else json.dumps(ch)[1:-1])
        elif 0xD800 <= ord(ch) <= 0xDFFF or how == 1:
            out.append("\\u%04x" % ord(ch) if ord(ch) <= 0xFFFF else json.dumps(ch)[1:-1])
        else:
            out.append(ch)  # raw (a raw control character when how == 3)
    if draw(st.integers(0, 20)) == 0:
        out.append("\\ud800")  # a lone high escape at the end, or before a following escape
    if draw(st.integers(0, 30)) == 0:
        out.append(draw(st.sampled_from(["\\x", "\\u12", "\\/"])))
    out.append('"')
    return "".join(out)


NUMBERS = st.one_of(
    st.integers(-(2**53) - 2, 2**53 + 2).map(str),
    st.sampled_from(
        [
            "9007199254740991",
            "-9007199254740991",
            "9007199254740992",
            "-9007199254740992",
            "1" + "0" * 400,
            "1" * 5000,
            "-" + "9" * 4301,
            "10000000000000000",
            "-0",
            "0",
            "1.0",
            "1e5",
            "1E-2",
            "-0.0",
            "NaN",
            "Infinity",
            "-Infinity",
            "01",
            "+1",
            ".5",
            "1.",
            "0x10",
        ]
    ),
)


def _json_text(draw, depth: int) -> str:
    w = lambda: draw(WS)  # noqa: E731
    kind = draw(st.integers(0, 9 if depth < 36 else 5))
    if kind <= 1:
        return draw(json_string())
    if kind <= 3:
        return draw(NUMBERS)
    if kind <= 5:
        return draw(st.sampled_from(["true", "false", "null", "True", "nul"]))
    if kind <= 7:
        items = [_json_text(draw, depth + 1) for _ in range(draw(st.integers(0, 3)))]
        return "[" + w() + ("," + w()).join(items) + w() + "]"
    keys = draw(
        st.lists(st.sampled_from(['"a"', '"b"', '"\\u0061"', '"\\ud800"', '"é"', '"e\\u0301"', '""']), max_size=3)
    )
    return "{" + w() + ",".join(f"{k}{w()}:{w()}{_json_text(draw, depth + 1)}" for k in keys) + w() + "}"


@st.composite
def json_text(draw) -> bytes:
    if draw(st.integers(0, 8)) == 0:  # deep nesting around the boundary
        n = draw(st.integers(30, 35))
        inner = draw(st.sampled_from(["", "1", '"[["', "1.5", '"\\ud800"']))
        opens = "".join(draw(st.sampled_from("[{")) for _ in range(n))
        text = "".join('{"k":' if c == "{" else "[" for c in opens) + inner
        text += "".join("}" if c == "{" else "]" for c in reversed(opens))
    else:
        text = draw(WS) + _json_text(draw, 0) + draw(WS)
    if draw(st.integers(0, 10)) == 0:
        text = "\ufeff" + text
    data = text.encode("utf-8", "surrogatepass")
    mutation = draw(st.integers(0, 12))
    if mutation == 0 and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == 1:
        i = draw(st.integers(0, len(data)))
        data = (
            data[:i] + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x00", b"\xe2\x82"])) + data[i:]
        )
    return data


def _value(fn, data: bytes) -> tuple[str | None, Any]:
    try:
        return None, fn(data)
    except (PocsyncError, indep.Reject) as exc:
        return exc.reason, None


@SETTINGS
@given(data=json_text())
def test_strict_json_same_decision_and_reason(data: bytes) -> None:
    ours, theirs = _value(jsonc.loads, data), _value(indep.strict_json, data)
    assert ours[0] == theirs[0], data
    assert ours[1] == theirs[1]
    if ours[0] is None:  # accepted text can be written canonically, read back the same and stored as UTF-8
        again = jsonc.dumps(ours[1])
        assert jsonc.loads(again) == ours[1]
        again.decode("utf-8")


# --- entries: pocsync, the independent reading and the JSON Schema -------------------------------------
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=3),
    lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=2), c, max_size=2),
    max_leaves=4,
)
STRS = st.sampled_from(["", " ", "\u3000", "x", "a@example.org", "+15550100", "\u200b", "\ufeff"])
FIELD_VALUES = {
    "state": st.sampled_from(["DEU", "FRA", "deu", "DE", "DEUX", "DEU\n", 1, None]),
    "kind": st.sampled_from(["technical", "diplomatic", "Technical", "other", None, 1]),
    "organisation": STRS | st.sampled_from([None, 1, ["x"]]),
    "emails": st.lists(STRS, max_size=2) | st.sampled_from([None, "a@example.org", [1], [None]]),
    "phones": st.lists(STRS, max_size=2) | st.sampled_from([None, "+15550100", [True]]),
    "languages": st.lists(STRS, max_size=2) | st.sampled_from([None, "en", [1]]),
    "networks": st.lists(STRS, max_size=2) | st.sampled_from([None, {}, [[]]]),
    "position": STRS | st.sampled_from([None, 1, []]),
    "person": STRS | st.sampled_from([None, False, {}]),
    "timezone": STRS | st.sampled_from([None, 0]),
    "notes": STRS | st.sampled_from([None, ["x"]]),
    "available_24_7": st.sampled_from([True, False, None, 0, 1, "true"]),
    "secure_channels": st.sampled_from([None, [], [{}], [{"expires": "2020-01-01"}], ["x"], {}, [None]]),
    "holder_epoch": st.sampled_from(
        [
            "1763800000000-0000",
            CS_HLC,
            "1763800005000-0001",
            "9999999999999-9999",
            "1763800000000-0000\n",
            "176380000000-00000",
            None,
            1763800000000,
            "",
        ]
    ),
}


@st.composite
def entries(draw) -> tuple[str, object]:
    key = draw(
        st.sampled_from(
            [
                "DEU/technical",
                "DEU/diplomatic",
                "FRA/technical",
                "DEU/other",
                "deu/technical",
                "DEU/technical/x",
                "DEU",
                "DEU/technical\n",
                "UKR/diplomatic",
            ]
        )
    )
    if draw(st.integers(0, 15)) == 0:
        return key, draw(ANY_JSON)
    state, _, kind = key.partition("/")
    e: dict[str, Any] = {
        "state": state,
        "kind": kind,
        "organisation": "Example",
        "emails": ["a@example.org"],
        "holder_epoch": "1763800000000-0000",
    }
    for name, strategy in FIELD_VALUES.items():
        choice = draw(st.integers(0, 5))
        if choice == 0:
            e.pop(name, None)
        elif choice == 1:
            e[name] = draw(strategy)
    for extra in draw(st.lists(st.sampled_from(["x-extra", "Emails", "", "\u0000", "holder_epoch "]), max_size=2)):
        e[extra] = draw(ANY_JSON)
    return key, e


@SETTINGS
@given(case=entries())
def test_entries_same_reason_and_schema_agrees(case: tuple[str, object]) -> None:
    key, e = case
    ours = _reason(model.check_structure, key, e, cs_hlc=CS_HLC)
    theirs = indep.entry_refusal(key, e, CS_HLC)
    assert ours == theirs, (key, e)
    valid = SCHEMA.is_valid(e)
    if ours is None:
        assert valid, (key, e)
    if not valid:
        assert ours is not None
    key_ok = _reason(model.parse_key, key) is None
    if valid and key_ok:  # what the schema cannot say: state/kind equal the key's, holder_epoch not after
        assert ours in (None, "key_mismatch", "bad_holder_epoch"), (ours, key, e)
        if ours == "bad_holder_epoch":
            assert e["holder_epoch"] > CS_HLC


# --- change-sets signed with the vector keys ----------------------------------------------------------
HLCS = st.sampled_from(
    [
        CS_HLC,
        "1763800000000-0000",
        "0000000000000-0000",
        "1763800310000-0000",
        "1763800310001-0000",
        "9999999999999-9999",
        "1763800005000-000",
        "1763800005000_0000",
        "1763800005000-0000\n",
        " 1763800005000-0000",
        "１７６３８００００５０００-0000",
        None,
        1,
    ]
)
OP_NAMES = st.sampled_from(["put", "put", "delete", "withdraw", "note", "note", "Put", "", "comment"])
OP_KEYS = st.sampled_from(
    [
        "DEU/technical",
        "FRA/diplomatic",
        "ITA/technical",
        "UKR/technical",
        "DEU",
        "UKR",
        "deu",
        "DEU/other",
        "DEU/technical ",
        "",
        "DEU/technical/x",
        "DEU/technical\n",
    ]
)


@st.composite
def ops(draw) -> object:
    op: dict[str, Any] = {"op": draw(OP_NAMES), "key": draw(OP_KEYS)}
    if op["op"] == "put" or draw(st.integers(0, 5)) == 0:
        key = op["key"] if isinstance(op["key"], str) else "DEU/technical"
        if draw(st.booleans()) and key.count("/") == 1:
            s, k = key.split("/")
            op["entry"] = {
                "state": s,
                "kind": k,
                "organisation": "Example",
                "emails": ["a@example.org"],
                "holder_epoch": "1763800000000-0000",
            }
        else:
            op["entry"] = draw(entries())[1]
    if op["op"] == "note" or draw(st.integers(0, 5)) == 0:
        op["text"] = draw(st.sampled_from(["hello", "", " ", "x" * 281, "x" * 280, 1, None, ["x"]]))
    for _ in range(draw(st.integers(0, 2))):
        op[draw(st.sampled_from(["x", "op ", "entry", "text"]))] = draw(ANY_JSON)
    if draw(st.integers(0, 30)) == 0:
        op[draw(st.sampled_from(["op", "key"]))] = draw(st.sampled_from([None, 1, ["put"]]))
    if draw(st.integers(0, 30)) == 0:
        op.pop(draw(st.sampled_from(["op", "key"])))
    if draw(st.integers(0, 30)) == 0:
        return draw(ANY_JSON)
    return op


WRONG = st.sampled_from([None, True, 0, -1, 1.5, "1", "", [], {}, 2**53, 2**63])


@st.composite
def payloads(draw) -> tuple[bytes, str, str]:
    """(payload bytes, keyid, signer): half well-formed change-sets of eu with random ops, half adversarial."""
    good = draw(st.booleans())
    origin = "eu" if good else draw(st.sampled_from(["eu", "eu", "osce", "un", "EU", "nobody", "", "eu\n"]))
    hlc = draw(st.sampled_from([CS_HLC, "1763800000000-0000", "1763800310000-0000"])) if good else draw(HLCS)
    p: dict[str, Any] = {
        "type": "pocsync.changeset/v1",
        "origin": origin,
        "seq": 1,
        "prev": None,
        "hlc": hlc,
        "manifest": 1 if good else draw(st.sampled_from([1, 1, 2, 3])),
        "author": "staff@eu.example.org"
        if good
        else draw(st.sampled_from(["staff@eu.example.org", "", " ", "\u3000", "x" * 200, "x" * 201, "\u200b"])),
        "ops": draw(st.lists(ops(), min_size=1 if good else 0, max_size=4)),
    }
    if good:
        return (
            json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"),
            "eu:k1",
            "eu",
        )
    if draw(st.integers(0, 40)) == 0:
        p["ops"] = p["ops"] * 300  # past the cap of 1000
    for name in list(p):
        choice = draw(st.integers(0, 14))
        if choice == 0:
            del p[name]
        elif choice == 1:
            p[name] = draw(WRONG)
    if draw(st.integers(0, 6)) == 0:
        p["seq"] = draw(st.sampled_from([2, 2**53 - 1]))
        p["prev"] = draw(st.sampled_from([None, "sha256:" + "0" * 64, "sha256:" + "A" * 64, "sha256:0"]))
    if draw(st.integers(0, 5)) == 0:
        p["type"] = draw(st.sampled_from(["pocsync.changeset/v2", "pocsync.manifest/v1", None]))
    for _ in range(draw(st.integers(0, 2))):
        p[draw(st.sampled_from(["x", "features", "Origin", "\u0000"]))] = draw(ANY_JSON)
    data = json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 12)) == 0:
        data = draw(json_text())  # not a change-set at all
    return (
        data,
        draw(st.sampled_from(["eu:k1", "eu:k1", "osce:k1", "eu:k2", "eu", "nobody:k1"])),
        draw(st.sampled_from(["eu", "eu", "eu", "osce"])),
    )


def _sign(payload: bytes, keyid: str, signer: str) -> bytes:
    sig = KEYS[signer].sign(dsse.pae(dsse.CHANGESET_TYPE, payload))
    return json.dumps(
        {
            "payloadType": dsse.CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def _indep_status(out: str) -> tuple[str, str]:
    status, _, reason = out.partition(":")
    return status, reason or ("" if status == "accepted" else status)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signed=payloads(), features=st.booleans())
def test_changesets_same_outcome_refusals_and_digest(signed: tuple[bytes, str, str], features: bool) -> None:
    payload, keyid, signer = signed
    data = _sign(payload, keyid, signer)
    ms = [mf.parse(e.encode()) for e in (MANIFESTS if features else MANIFESTS[:1])]
    rep = Replica(MemoryState(), ms[0])
    for m in ms[1:]:
        rep.reevaluate(now_ms=NOW_MS, manifest=m)
    out = rep.receive(data, now_ms=NOW_MS)
    ir = indep.Replica(indep.manifest(ms[-1].to_bytes()))
    theirs = _indep_status(ir.receive(data, NOW_MS))
    event(f"{out.status}:{out.reason}")
    if out.status == "parked" and out.reason == "manifest_unknown":
        assert theirs == ("parked", "manifest_unknown")
        return
    assert (out.status, out.reason) == theirs, payload
    if out.status != "accepted":
        return
    refused, lines = ir.refused_and_lines()
    st_ = rep.state
    assert sorted([r.origin, r.seq, r.index, r.reason] for r in st_.refusals.values()) == refused, payload
    assert digest_lines(st_.digest_view()).decode() == lines
    assert st_.digest() == indep.digest(lines)


# --- extension rules (§8.2, §8.3): feature switched on and off again, every namespace, any order ----------
ROOT_KEY = Ed25519PrivateKey.from_private_bytes(_seed("root"))


def _manifest_chain() -> list[mf.Manifest]:
    """v1 no features, v2 toy-note, v3 toy-note off again, v4 toy-note with max_length 5."""
    m1 = mf.parse(MANIFESTS[0].encode())
    out = [m1]
    for features, policy in (([], None), (["toy-note"], None), ([], None), (["toy-note"], {"max_length": 5})):
        if len(out) == 1 and not features:
            continue
        p = mf.set_features(mf.next_version(out[-1].payload), features)
        if policy:
            p = mf.set_policy(p, "toy-note", policy)
        out.append(mf.sign(mf.unsigned(p), ROOT_KEY))
    return out


MCHAIN = _manifest_chain()
assert [sorted(m.features) for m in MCHAIN] == [[], ["toy-note"], [], ["toy-note"]]

GATE_OPS = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["put", "delete", "withdraw", "note", "note", "comment"]),
        "key": st.sampled_from(["DEU/technical", "FRA/technical", "DEU", "FRA", "UKR"]),
        "text": st.sampled_from(["hi", "hello world", " "]),
    }
)


def _gate_chain(origin: str, op_lists: list[list[dict]]) -> list[bytes]:
    out, prev = [], None
    for i, op_list in enumerate(op_lists, start=1):
        ops_ = []
        for o in op_list:
            o = dict(o)
            if o["op"] in ("put", "delete", "withdraw") and "/" not in o["key"]:
                o["key"] += "/technical"
            if o["op"] == "put":
                s, k = o["key"].split("/")
                o["entry"] = {
                    "state": s,
                    "kind": k,
                    "organisation": f"Org {origin}",
                    "emails": ["a@example.org"],
                    "holder_epoch": "1763800000000-0000",
                }
            ops_.append(o)
        payload = json.dumps(
            {
                "type": "pocsync.changeset/v1",
                "origin": origin,
                "seq": i,
                "prev": prev,
                "hlc": f"176380000{i % 10}000-000{len(origin) % 3}",
                "manifest": 1,
                "author": "a",
                "ops": ops_,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        prev = "sha256:" + hashlib.sha256(payload).hexdigest()
        out.append(_sign(payload, f"{origin}:k1", origin))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    data=st.data(),
    eu=st.lists(st.lists(GATE_OPS, min_size=1, max_size=3), min_size=1, max_size=3),
    osce=st.lists(st.lists(GATE_OPS, min_size=1, max_size=3), min_size=0, max_size=3),
    upto=st.integers(0, len(MCHAIN) - 1),
)
def test_feature_gating_any_order_and_duplicates_agrees_with_the_independent_reading(
    data: st.DataObject, eu: list, osce: list, upto: int
) -> None:
    """Change-sets with `note` ops, delivered in any order with duplicates, interleaved with manifest
    installs that switch toy-note on, off and on again (with a policy): the final refusals and digest
    lines (every namespace) equal the independent reading's under the last manifest."""
    envs = _gate_chain("eu", eu) + _gate_chain("osce", osce)
    extra = data.draw(st.lists(st.sampled_from(envs), max_size=len(envs)))
    order = data.draw(st.permutations(envs + extra))
    installs = data.draw(st.lists(st.integers(0, len(order)), min_size=upto, max_size=upto))
    rep = Replica(MemoryState(), MCHAIN[0])
    version = 0
    for i, env in enumerate(order):
        while version < upto and installs.count(i) > 0 and installs.remove(i) is None:
            version += 1
            rep.reevaluate(now_ms=NOW_MS, manifest=MCHAIN[version])
        rep.receive(env, now_ms=NOW_MS)
    while version < upto:
        version += 1
        rep.reevaluate(now_ms=NOW_MS, manifest=MCHAIN[version])
    ir = indep.Replica(indep.manifest(MCHAIN[upto].to_bytes()))
    for env in envs:
        ir.receive(env, NOW_MS)
    refused, lines = ir.refused_and_lines()
    st_ = rep.state
    assert sorted(st_.log) == sorted(ir.log)
    assert sorted([r.origin, r.seq, r.index, r.reason] for r in st_.refusals.values()) == refused
    assert digest_lines(st_.digest_view()).decode() == lines
    # the same set, from scratch under the last manifest only, gives the same view
    fresh = Replica(MemoryState(), MCHAIN[0])
    for m in MCHAIN[1 : upto + 1]:
        fresh.reevaluate(now_ms=NOW_MS, manifest=m)
    for env in reversed(envs):
        fresh.receive(env, now_ms=NOW_MS)
    assert fresh.state.digest() == st_.digest()


# --- signed peer requests (§13.2) ---------------------------------------------------------------------------
from pocsync.core.peerauth import verify_request  # noqa: E402

PEER_TYPE = "application/vnd.pocsync.peer-request+json"
PR_MANIFEST = mf.parse(MANIFESTS[0].encode())
PR_INDEP = indep.manifest(MANIFESTS[0].encode())


@st.composite
def peer_headers(draw) -> tuple[str | None, bytes]:
    body = draw(st.sampled_from([b"", b"{}"]))
    p: dict[str, Any] = {
        "body": "sha256:" + hashlib.sha256(body).hexdigest(),
        "method": "GET",
        "node": "eu",
        "path": "/v1/peer/heads",
        "target": "un",
        "ts": NOW_MS,
    }
    for name in list(p):
        choice = draw(st.integers(0, 12))
        if choice == 0:
            del p[name]
        elif choice == 1:
            p[name] = draw(
                WRONG | st.sampled_from(["osce", "get", "/v1/peer/heads?x=1", NOW_MS - 60_001, NOW_MS + 60_000, True])
            )
    payload = json.dumps(p, sort_keys=True, separators=(",", ":")).encode()
    if draw(st.integers(0, 10)) == 0:
        payload = draw(st.sampled_from([b"[]", b"1", b'{"ts":1.5}', b'{"a":1,"a":2}', b"\xff", b'"x"']))
    keyid, signer = draw(
        st.sampled_from(
            [("eu:k1", "eu"), ("eu:k1", "eu"), ("osce:k1", "osce"), ("eu:k1", "osce"), ("eu:k9", "eu"), ("eu", "eu")]
        )
    )
    sig = base64.b64encode(KEYS[signer].sign(dsse.pae(PEER_TYPE, payload))).decode()
    env = {
        "payloadType": PEER_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": keyid, "sig": sig}] * draw(st.sampled_from([1, 1, 1, 0, 2])),
    }
    if draw(st.integers(0, 10)) == 0:
        env["payloadType"] = "application/vnd.pocsync.changeset+json"
    raw = json.dumps(env).encode()
    header = (
        draw(st.sampled_from(["Pocsync ", "Pocsync ", "Pocsync ", "pocsync ", "Pocsync  ", "Bearer "]))
        + base64.b64encode(raw).decode()
        + draw(st.sampled_from(["", "", "", " ", "=", "\n"]))
    )
    if draw(st.integers(0, 15)) == 0:
        header = draw(st.sampled_from([None, "", "Pocsync", "Pocsync é", "Pocsync " + "A" * 5000]))
    return header, body


@SETTINGS
@given(case=peer_headers())
def test_peer_requests_same_reason(case: tuple[str | None, bytes]) -> None:
    header, body = case
    args = dict(me="un", method="GET", path="/v1/peer/heads", body=body, now_ms=NOW_MS, max_age_ms=60_000)
    ours = _reason(verify_request, header, manifest=PR_MANIFEST, **args)
    theirs = indep.peer_request(header, m=PR_INDEP, **args)
    assert ours == theirs, header


# --- manifest versions in any order (§6 Installing, §8.3) --------------------------------------------------
def _pool() -> list[mf.Manifest]:
    m1 = mf.parse(MANIFESTS[0].encode())
    v2 = mf.set_features(mf.next_version(m1.payload), ["toy-note"])
    v3 = mf.set_features(mf.next_version(v2), [])
    other_root = Ed25519PrivateKey.from_private_bytes(_seed("not a root"))
    return [
        m1,
        mf.sign(mf.unsigned(v2), ROOT_KEY),
        mf.sign(mf.unsigned(v3), ROOT_KEY),
        mf.sign(mf.unsigned(mf.set_features(mf.next_version(m1.payload), ["future-feature"])), ROOT_KEY),
        mf.sign(mf.unsigned(mf.set_features(mf.next_version(v2), ["comm-checks", "toy-note"])), ROOT_KEY),
        mf.sign(mf.unsigned(mf.set_expiry(v3, 1_700_000_000)), ROOT_KEY),
        mf.sign(mf.unsigned(mf.set_policy(v2, "toy-note", {"max_length": 3})), ROOT_KEY),
        mf.sign(mf.unsigned(mf.next_version(v3)), ROOT_KEY),
        mf.sign_as_previous_root(mf.unsigned(mf.next_version(v3)), other_root),
    ]


POOL = _pool()
POOL_INDEP = [indep.manifest(m.to_bytes()) for m in POOL]


@SETTINGS
@given(order=st.lists(st.integers(0, len(POOL) - 1), max_size=12))
def test_manifest_installs_in_any_order_same_reasons(order: list[int]) -> None:
    now_s = NOW_MS // 1000
    ours: mf.Manifest | None = POOL[0]
    theirs = POOL_INDEP[0]
    for i in order:
        got = _reason(mf.check_install, ours, POOL[i], now_s=now_s)
        want = indep.install_check(theirs, POOL_INDEP[i], now_s=now_s, software=indep.SOFTWARE_FEATURES)
        assert got == want, (i, ours.version if ours else None)
        if got is None:
            ours, theirs = POOL[i], POOL_INDEP[i]


# --- chains: prev, hlc regression, gaps, clock skew, equivocation, in any order with duplicates -------------
HLC_STEPS = st.sampled_from(
    [
        "1763800001000-0000",
        "1763800002000-0000",
        "1763800002000-0001",
        "1763800000500-0000",
        "1763800400000-0000",
        "1763800002000-0000",
    ]
)


@st.composite
def chains(draw) -> list[bytes]:
    out: list[bytes] = []
    for origin in ("eu", "osce"):
        prev = None
        for seq in range(1, draw(st.integers(1, 4)) + 1):
            p = {
                "type": "pocsync.changeset/v1",
                "origin": origin,
                "seq": seq,
                "prev": prev,
                "hlc": draw(HLC_STEPS),
                "manifest": 1,
                "author": "a",
                "ops": [{"op": "delete", "key": "DEU/technical"}],
            }
            twist = draw(st.integers(0, 9))
            if twist == 0:
                p["prev"] = "sha256:" + "1" * 64  # wrong prev (bad_prev at seq 1)
            elif twist == 1:
                p["ops"] = [
                    {
                        "op": "put",
                        "key": "FRA/technical",
                        "entry": {
                            "state": "FRA",
                            "kind": "technical",
                            "organisation": origin,
                            "phones": ["+1"],
                            "holder_epoch": "1763800000000-0000",
                        },
                    }
                ]
            payload = json.dumps(p, sort_keys=True, separators=(",", ":")).encode()
            out.append(_sign(payload, f"{origin}:k1", origin))
            if draw(st.integers(0, 6)) == 0:  # a second change-set at the same seq: equivocation
                other = {"author": "b"}
                if draw(st.integers(0, 2)) == 0:  # the second one does not chain (§8 step 6: still a proof)
                    other["prev"] = "sha256:" + "2" * 64
                alt = json.dumps({**p, **other}, sort_keys=True, separators=(",", ":")).encode()
                out.append(_sign(alt, f"{origin}:k1", origin))
            prev = "sha256:" + hashlib.sha256(payload).hexdigest()
    return out


@SETTINGS
@given(envs=chains(), data=st.data())
def test_chains_in_any_order_same_log_quarantine_proofs_and_view(envs: list[bytes], data: st.DataObject) -> None:
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=3))))
    rep = Replica(MemoryState(), mf.parse(MANIFESTS[0].encode()))
    ir = indep.Replica(indep.manifest(MANIFESTS[0].encode()))
    for env in order:
        rep.receive(env, now_ms=NOW_MS)
        ir.receive(env, NOW_MS)
    st_ = rep.state
    refused, lines = ir.refused_and_lines()
    assert sorted((p.origin, p.seq) for p in st_.proofs()) == sorted(ir.proofs)
    assert digest_lines(st_.digest_view()).decode() == lines
    if ir.proofs:  # §14: which equivocating change-set sits in the log (and what follows it) depends on the
        return  # order, here the order in which a reader releases two parked ones; proofs and view do not
    assert sorted(st_.log) == sorted(ir.log)
    assert sorted({q[1] for q in st_.quarantined}) == sorted(set(ir.quarantined))
    assert sorted([r.origin, r.seq, r.index, r.reason] for r in st_.refusals.values()) == refused


@SETTINGS
@given(envs=chains(), data=st.data())
def test_chains_proofs_and_view_do_not_depend_on_the_order(envs: list[bytes], data: st.DataObject) -> None:
    """§8 step 6, §11, §14: the proofs and the view are functions of the set of change-sets received — two orders,
    with duplicates, give pocsync and the independent reading the same proofs and digest lines."""
    runs = []
    for _ in range(2):
        order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=3))))
        rep = Replica(MemoryState(), mf.parse(MANIFESTS[0].encode()))
        ir = indep.Replica(indep.manifest(MANIFESTS[0].encode()))
        for env in order:
            rep.receive(env, now_ms=NOW_MS)
            ir.receive(env, NOW_MS)
        proofs = sorted((p.origin, p.seq) for p in rep.state.proofs())
        assert proofs == sorted(ir.proofs)
        runs.append((proofs, digest_lines(rep.state.digest_view()).decode(), ir.refused_and_lines()[1]))
        if proofs:
            event("proofs")
    assert runs[0] == runs[1]
    assert runs[0][1] == runs[0][2]


# --- check and confirm ops (§15), well-formed and broken, in any order with duplicates ------------------------
_M1 = mf.parse(MANIFESTS[0].encode())
M_CHECKS = mf.sign(mf.unsigned(mf.set_features(mf.next_version(_M1.payload), ["comm-checks", "freshness"])), ROOT_KEY)
_HEX = hashlib.sha256(b"cert@example.org").hexdigest()
CHECK_OPS = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["check", "check", "check", "confirm"]),
        "key": st.sampled_from(["DEU/technical", "FRA/diplomatic", "UKR/technical", "DEU", "deu/technical"]),
        "channel": st.sampled_from(
            [f"email:{_HEX}", f"phone:{_HEX}", f"email:{_HEX.upper()}", f"fax:{_HEX}", f"email:{_HEX}\n", "email 1", 5]
        ),
        "result": st.sampled_from(
            ["sent", "acknowledged", "no_response", "bounced", "answered", "no_answer", "wrong_number", "ok", None]
        ),
        "campaign": st.sampled_from([None, "eu-q4", "osce-q4", "Q4", "", 7]),
    },
    optional={
        "deadline_ms": st.sampled_from([0, 1763800172800000, -1, True, "1", None, 2**53]),
        "response_seconds": st.sampled_from([0, 3600, -5, False, None]),
        "smtp_code": st.sampled_from([550, 400, 599, 399, 600, "550", None]),
    },
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    data=st.data(),
    eu=st.lists(st.lists(CHECK_OPS, min_size=1, max_size=4), min_size=1, max_size=3),
    osce=st.lists(st.lists(CHECK_OPS, min_size=1, max_size=4), min_size=0, max_size=3),
)
def test_check_ops_any_order_agree_with_the_independent_reading(data: st.DataObject, eu: list, osce: list) -> None:
    """Random check and confirm ops (every field right or wrong), delivered in any order with duplicates: the
    refusals (reason per op) and the digest lines (registers check, verified, campaign, confirm) equal the
    independent reading's, with the features on and off."""
    envs = _gate_chain("eu", eu) + _gate_chain("osce", osce)
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=len(envs)))))
    for m in (M_CHECKS, _M1):
        rep = Replica(MemoryState(), m)
        for env in order:
            rep.receive(env, now_ms=NOW_MS)
        ir = indep.Replica(indep.manifest(m.to_bytes()))
        for env in envs:
            ir.receive(env, NOW_MS)
        refused, lines = ir.refused_and_lines()
        assert sorted([r.origin, r.seq, r.index, r.reason] for r in rep.state.refusals.values()) == refused
        assert digest_lines(rep.state.digest_view()).decode() == lines
        for r in refused:
            event(f"{m.version}:{r[3]}")
        for ns in ("check ", "verified ", "campaign ", "confirm "):
            if ns in lines:
                event(f"register {ns.strip()}")


# --- regression: the case Hypothesis found for the chains test (PROTOCOL.md §8 step 6, §11) --------------------------
def _found_case() -> list[bytes]:
    """eu forks at seq 2 (authors a, b) and at seq 3 on the branch 2a; osce#1 has a wrong prev.  Delivered as found:
    3a, 2a, 2b, 1, 3b, osce#1.  A reader that logs 2b refuses 3a and 3b (prev_mismatch) — they are still a proof."""
    hlc, fra = (
        "1763800001000-0000",
        {
            "op": "put",
            "key": "FRA/technical",
            "entry": {
                "state": "FRA",
                "kind": "technical",
                "organisation": "eu",
                "phones": ["+1"],
                "holder_epoch": "1763800000000-0000",
            },
        },
    )

    def payload(origin: str, seq: int, prev: str | None, ops: list, author: str = "a") -> bytes:
        return json.dumps(
            {
                "type": "pocsync.changeset/v1",
                "origin": origin,
                "seq": seq,
                "prev": prev,
                "hlc": hlc,
                "manifest": 1,
                "author": author,
                "ops": ops,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def cid(p: bytes) -> str:
        return "sha256:" + hashlib.sha256(p).hexdigest()

    p1 = payload("eu", 1, None, [{"op": "delete", "key": "DEU/technical"}])
    p2a, p2b = payload("eu", 2, cid(p1), [fra]), payload("eu", 2, cid(p1), [fra], "b")
    p3a, p3b = payload("eu", 3, cid(p2a), [fra]), payload("eu", 3, cid(p2a), [fra], "b")
    o1 = payload("osce", 1, "sha256:" + "1" * 64, [{"op": "delete", "key": "DEU/technical"}])
    assert (cid(p1)[7:13], cid(p2a)[7:13]) == ("075cb2", "e2585d")  # the very change-sets of the found case
    return [
        _sign(p3a, "eu:k1", "eu"),
        _sign(p2a, "eu:k1", "eu"),
        _sign(p2b, "eu:k1", "eu"),
        _sign(p1, "eu:k1", "eu"),
        _sign(p3b, "eu:k1", "eu"),
        _sign(o1, "osce:k1", "osce"),
    ]


def test_found_case_fork_on_the_branch_not_logged_is_a_proof_in_every_order() -> None:
    """Both forks are proofs whichever seq-2 branch a reader logs (pocsync releases parked change-sets by id, the
    independent reading by arrival); in every order of the six, pocsync (memory and SQLite) and the independent
    reading find eu seq 2 and seq 3 and derive the same view."""
    import itertools
    import tempfile

    from pocsync.store import Store

    envs = _found_case()
    m = mf.parse(MANIFESTS[0].encode())
    want_lines = None
    orders = [envs] + [list(o) for o in itertools.islice(itertools.permutations(envs), 0, None, 7)]
    for order in orders:
        rep = Replica(MemoryState(), m)
        ir = indep.Replica(indep.manifest(MANIFESTS[0].encode()))
        for env in order:
            rep.receive(env, now_ms=NOW_MS)
            ir.receive(env, NOW_MS)
        assert sorted((p.origin, p.seq) for p in rep.state.proofs()) == [("eu", 2), ("eu", 3)]
        assert sorted(ir.proofs) == [("eu", 2), ("eu", 3)]
        refused, lines = ir.refused_and_lines()
        assert digest_lines(rep.state.digest_view()).decode() == lines
        want_lines = lines if want_lines is None else want_lines
        assert lines == want_lines
    with tempfile.TemporaryDirectory() as tmp:  # the SQLite store holds the refused seq-3 change-sets likewise
        store = Store.create(Path(tmp) / "un.sqlite", node_id="un")
        store.install_manifest(m, now_ms_=NOW_MS)
        for env in envs:
            store.receive(env, now_ms_=NOW_MS)
        assert sorted((p["origin"], p["seq"]) for p in store.proofs()) == [("eu", 2), ("eu", 3)]
        assert store.digest() == indep.digest(want_lines)
        store.close()
