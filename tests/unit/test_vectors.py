"""The protocol test vectors, checked both ways: pocsync reproduces them from their inputs, and
pocsync and an independent verifier (tests/independent, written from the DSSE definition) accept them."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import hlc as hlcmod
from pocsync.core import jsonc, model, opkinds
from pocsync.core import manifest as mf
from pocsync.core.heads import verify as verify_heads
from pocsync.core.merge import digest_lines, view_digest
from pocsync.core.peerauth import verify_request
from pocsync.core.replica import MemoryState, Proof, Replica
from pocsync.errors import PocsyncError, ProtocolError
from tests.independent import dsse_verify
from tests.independent import protocol as indep

V = Path(__file__).parent.parent / "vectors"


def load(name: str) -> dict:
    return json.loads((V / name).read_text())


def manifest() -> mf.Manifest:
    return mf.parse(load("manifest.json")["envelope"].encode())


def test_hlc_vectors() -> None:
    v = load("hlc.json")
    for case in v["next"]:
        assert hlcmod.next_hlc(case["last"], case["now_ms"]) == case["expect"]
    assert [c["expect"] for c in v["next"]] == [
        "1763800000123-0000",
        "1763800000123-0001",
        "1763800000123-0042",
        "1763800000124-0000",
        "1763800009999-0000",
    ]
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
    assert rep.state.digest() == v["digest_after"]
    assert view_digest([("entry", k, ref) for k, ref in v["view_after"]]) == v["digest_after"]
    # unknown entry fields are kept
    assert rep.state.winner("DEU/technical").entry["x-regional-field"] == "kept"
    # pocsync reproduces the payload bytes from the values
    p1 = json.loads(v["chain"][0]["payload"])
    again = csmod.build_payload(
        origin=p1["origin"],
        seq=p1["seq"],
        prev=p1["prev"],
        hlc=p1["hlc"],
        manifest=p1["manifest"],
        author=p1["author"],
        ops=p1["ops"],
    )
    assert again.decode() == v["chain"][0]["payload"]


def test_digest_vector() -> None:
    v = load("digest.json")
    view = [tuple(x) for x in v["view"]]
    assert digest_lines(view).decode() == v["lines"]
    assert v["lines"].startswith("entry DEU/technical ")  # sorted
    assert v["lines"].endswith("\nnote DEU " + "sha256:" + "c" * 64 + "#1\n")
    # the independent reading: one "<namespace> <key> <ref>" line per key, sorted by code point
    assert indep.digest("".join(sorted(f"{ns} {k} {r}\n" for ns, k, r in v["view"]))) == v["digest"]
    assert view_digest(view) == v["digest"]
    assert v["empty_digest"] == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_heads_vector() -> None:
    v = load("heads.json")
    hv = verify_heads(v["envelope"].encode(), manifest())
    assert hv.payload().decode() == v["payload"]
    eu_pub = base64.b64decode(json.loads(load("manifest.json")["payload"])["nodes"]["eu"]["signing_keys"][0]["public"])
    ptype, body = dsse_verify.verify(v["envelope"], {"eu:k1": eu_pub})
    assert ptype == "application/vnd.pocsync.heads+json" and body.decode() == v["payload"]
    # the announced digest is the one of changeset.json's chain, recomputed from its lines independently
    assert (
        json.loads(body)["digest"]
        == load("changeset.json")["digest_after"]
        == indep.digest("".join(f"entry {k} {ref}\n" for k, ref in load("changeset.json")["view_after"]))
    )
    assert hv.node == "eu" and hv.heads["eu"][0] == 2


def test_sealed_vector_opens_and_sealing_round_trips() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from pocsync.core.seal import open_sealed, seal

    v = load("sealed.json")
    key = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["recipient_private_seed_hex"]))
    opened = open_sealed(v["sealed"].encode(), me=v["recipient"], key=key, max_bytes=1 << 16, context=v["context"])
    assert opened.plaintext.decode() == v["plaintext"] and opened.sender == "eu" and opened.manifest == 1
    assert opened.recipients == ("osce", "un")
    again = seal(
        v["plaintext"].encode(), sender="eu", manifest=1, context=v["context"], recipients={"un": key.public_key()}
    )
    assert open_sealed(again, me="un", key=key, max_bytes=1 << 16).plaintext.decode() == v["plaintext"]
    assert v["plaintext"].encode() not in v["sealed"].encode()


# --- vectors of issue 10, checked by pocsync and by the independent reading (tests/independent/protocol.py) --

FEDERATION = "federation.json"  # the manifest the scenario vectors embed
SCENARIOS = [
    "merge.json",
    "equivocation.json",
    "equivocation_held.json",
    "restart.json",
    "restart_bad_prev.json",
    "scope.json",
    "feature_off.json",
    "feature_on.json",
    "surrogate.json",
    "templates_on.json",
    "templates_publishers.json",
    "checks.json",
    "held.json",
]


def _reason(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except (PocsyncError, indep.Reject, indep.Park) as exc:
        return exc.reason
    return None


def test_strict_json_vectors_both_ways() -> None:
    v = load("json.json")
    assert v["reason_order"] == list(jsonc.REASONS) == list(indep.JSON_ORDER)
    assert {c["reason"] for c in v["cases"]} - {None} == set(jsonc.REASONS)  # every reason has a vector
    for c in v["cases"]:
        data = bytes.fromhex(c["text_hex"])
        assert _reason(jsonc.loads, data) == c["reason"], c["name"]
        assert _reason(indep.strict_json, data) == c["reason"], c["name"]


def test_changeset_envelope_rejection_vectors_both_ways() -> None:
    v = load("json.json")
    m, im = manifest(), indep.manifest(load("manifest.json")["envelope"].encode())
    for c in v["changeset_envelopes"]:
        data = bytes.fromhex(c["text_hex"])
        assert _reason(csmod.verify, data, m, max_bytes=1 << 18) == c["reason"], c["name"]
        assert _reason(indep.changeset, data, im) == c["reason"], c["name"]
        out = Replica(MemoryState(), m).receive(data, now_ms=1_763_800_001_000)
        assert (out.status, out.reason) == ("quarantined", c["reason"]), c["name"]


def test_peer_request_vectors_both_ways() -> None:
    v = load("peer_request.json")
    m, im = manifest(), indep.manifest(load("manifest.json")["envelope"].encode())
    assert {c["expect"] for c in v["cases"]} >= {None, "wrong_target", "stale_request", "unsigned_request"}
    for c in v["cases"]:
        args = dict(
            method=c["method"],
            path=c["path"],
            body=bytes.fromhex(c["body_hex"]),
            now_ms=c["now_ms"],
            max_age_ms=c["max_age_ms"],
        )
        assert _reason(verify_request, c["authorization"], manifest=m, me=c["me"], **args) == c["expect"], c["name"]
        assert indep.peer_request(c["authorization"], m=im, me=c["me"], **args) == c["expect"], c["name"]


def _pocsync_scenario(v: dict, order: list[dict]) -> Replica:
    ms = [mf.parse(e.encode()) for e in v["manifests"]]
    rep = Replica(MemoryState(), ms[0])
    for m in ms[1:]:
        rep.reevaluate(now_ms=v["now_ms"], manifest=m)
    for c in order:
        rep.receive(c["envelope"].encode(), now_ms=v["now_ms"])
    return rep


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_vectors_both_ways(name: str) -> None:
    v = load(name)
    want = v["expect"]
    if name != "scope.json":  # scope.json carries its own scope steps
        assert v["manifests"][0] == load(FEDERATION)["envelope"]
    for env in v["manifests"]:  # every manifest is signed by the vectors' root (independently checked)
        m_ind = indep.manifest(env.encode())
        assert indep.install_check(None, m_ind, now_s=1_800_000_000, software=indep.SOFTWARE_FEATURES) is None
    rep = _pocsync_scenario(v, v["changesets"])
    st = rep.state
    assert sorted([o, s] for (o, s) in st.log) == want["log"]
    assert sorted({q[1] for q in st.quarantined}) == want["quarantined"]
    assert sorted([p.origin, p.seq] for p in st.proofs()) == want["proofs"]
    assert sorted([r.origin, r.seq, r.index, r.reason] for r in st.refusals.values()) == want["refused"]
    assert digest_lines(st.digest_view()).decode() == want["lines"] and st.digest() == want["digest"]
    # the independent reading, from the last manifest (the view is a function of the set and the manifest)
    ir = indep.Replica(indep.manifest(v["manifests"][-1].encode()))
    for c in v["changesets"]:
        ir.receive(c["envelope"].encode(), v["now_ms"])
    refused, lines = ir.refused_and_lines()
    assert sorted(map(list, ir.log)) == want["log"]
    assert sorted(set(ir.quarantined)) == want["quarantined"]
    assert sorted(map(list, ir.proofs)) == want["proofs"]
    assert refused == want["refused"] and lines == want["lines"] and indep.digest(lines) == want["digest"]
    # and any order, with duplicates, gives pocsync the same view
    rnd = random.Random(name)
    for _ in range(5):
        order = v["changesets"] + rnd.sample(v["changesets"], k=len(v["changesets"]) // 2)
        rnd.shuffle(order)
        other = _pocsync_scenario(v, order).state
        assert other.digest() == want["digest"]
        assert sorted([p.origin, p.seq] for p in other.proofs()) == want["proofs"]
    if "proof" in v:
        p = v["proof"]
        assert indep.check_proof(p, indep.manifest(v["manifests"][-1].encode()))
        Replica(MemoryState(), mf.parse(v["manifests"][-1].encode())).check_proof(
            Proof(p["origin"], p["seq"], p["a"].encode(), p["b"].encode())
        )


def test_held_vector_steps_both_ways() -> None:
    """held.json (PROTOCOL.md §16): after each change-set in the listed order, both readings give its lines."""
    v = load("held.json")
    rep = Replica(MemoryState(), mf.parse(v["manifests"][0].encode()))
    rep.reevaluate(now_ms=v["now_ms"], manifest=mf.parse(v["manifests"][-1].encode()))
    ir = indep.Replica(indep.manifest(v["manifests"][-1].encode()))
    kinds = set()
    for c, step in zip(v["changesets"], v["steps"], strict=True):
        rep.receive(c["envelope"].encode(), now_ms=v["now_ms"])
        ir.receive(c["envelope"].encode(), v["now_ms"])
        assert digest_lines(rep.state.digest_view()).decode() == step["lines"], step["label"]
        assert ir.refused_and_lines()[1] == step["lines"], step["label"]
        kinds |= {line.split()[0] for line in step["lines"].splitlines()}
    assert kinds == {"entry", "held", "held-notice", "held-objected"}


def test_manifest_step_vectors_both_ways() -> None:
    v = load("manifest_steps.json")
    assert set(v["software_features"]) == set(opkinds.FEATURES)
    for c in v["cases"]:
        installed = [mf.parse(e.encode()) for e in c["installed"]]
        cand = mf.parse(c["candidate"].encode())
        assert cand.id == c["candidate_id"] == "sha256:" + hashlib.sha256(cand.envelope.payload).hexdigest()
        got = _reason(mf.check_install, installed[-1] if installed else None, cand, now_s=v["now_s"])
        assert got == c["expect"], c["name"]
        im = [indep.manifest(e.encode()) for e in c["installed"]]
        assert (
            indep.install_check(
                im[-1] if im else None,
                indep.manifest(c["candidate"].encode()),
                now_s=v["now_s"],
                software=set(v["software_features"]),
            )
            == c["expect"]
        ), c["name"]


def test_entry_vectors_both_ways() -> None:
    v = load("entries.json")
    reasons = {c["reason"] for c in v["cases"]}
    assert reasons - {None} == set(model.REASONS)  # every receipt reason of an entry has a vector
    for c in v["cases"]:
        assert _reason(model.check_structure, c["key"], c["entry"], cs_hlc=v["cs_hlc"]) == c["reason"], c["name"]
        assert indep.entry_refusal(c["key"], c["entry"], v["cs_hlc"]) == c["reason"], c["name"]


def test_template_vectors_both_ways() -> None:
    """ "templates.json" (§18.2, §18.3): each document and pattern judged alike by pocsync and the independent reading."""
    from pocsync.core import templates as tpl

    v = load("templates.json")
    assert {c["reason"] for c in v["cases"]} == {None, "bad_template"}
    for c in v["cases"]:
        assert _reason(tpl.check_op, c["op"]) == c["reason"], c["name"]
        assert indep.template_refusal(c["op"]) == c["reason"], c["name"]
    assert {p["safe"] for p in v["patterns"]} == {True, False}
    for p in v["patterns"]:
        assert (tpl.pattern_problem(p["pattern"]) is None) == p["safe"] == indep.safe_pattern(p["pattern"]), p


def test_every_vector_file_is_checked_here() -> None:
    source = Path(__file__).read_text()
    for f in sorted(V.glob("*.json")):
        assert f'"{f.name}"' in source, f"{f.name} is not checked by this file"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_digests_do_not_depend_on_delivery_order_or_duplicates(name: str, data: st.DataObject) -> None:
    """Property: any order of delivery, with duplicates, reaches the vector's digest and proofs
    (restarts, equivocations, feature gating, merge conflicts, surrogates)."""
    v = load(name)
    extra = data.draw(st.lists(st.sampled_from(v["changesets"]), max_size=len(v["changesets"])))
    order = data.draw(st.permutations(v["changesets"] + extra))
    st_ = _pocsync_scenario(v, order).state
    assert st_.digest() == v["expect"]["digest"]
    assert sorted([p.origin, p.seq] for p in st_.proofs()) == v["expect"]["proofs"]


def test_poke_vector_independently() -> None:
    """ "poke.json" (§13.3): the independent reading accepts the signed poke as un and refuses it as another
    target; its body is eu's head vector of heads.json (pocsync's side: tests/unit/test_poke_vector.py)."""
    v = load("poke.json")
    im = indep.manifest(load("manifest.json")["envelope"].encode())
    body = v["body"].encode()
    assert body == load("heads.json")["envelope"].encode()
    args = dict(method=v["method"], path=v["path"], body=body, now_ms=v["ts"] + 1000, max_age_ms=300_000)
    assert indep.peer_request(v["authorization"], m=im, me="un", **args) is None
    assert indep.peer_request(v["authorization"], m=im, me="osce", **args) == "wrong_target"


def test_check_vectors_channel_ids_and_feature_off_both_ways() -> None:
    """ "checks.json" (§15): channel ids by both readings; under v1 (no features) every op is refused feature_off."""
    from pocsync.core import checks

    v = load("checks.json")
    for c in v["channel_ids"]:
        assert checks.channel_id(c["kind"], c["value"]) == c["id"] == indep.channel_id(c["kind"], c["value"]), c
    v1 = {**v, "manifests": v["manifests"][:1]}
    st_ = _pocsync_scenario(v1, v["changesets"]).state
    assert sorted([r.origin, r.seq, r.index, r.reason] for r in st_.refusals.values()) == v["expect_v1"]["refused"]
    assert {r[3] for r in v["expect_v1"]["refused"]} == {"feature_off"} and v["expect_v1"]["lines"] == ""
    ir = indep.Replica(indep.manifest(v["manifests"][0].encode()))
    for c in v["changesets"]:
        ir.receive(c["envelope"].encode(), v["now_ms"])
    assert ir.refused_and_lines() == (v["expect_v1"]["refused"], "")


def test_freshness_vectors_both_ways() -> None:
    """ "freshness.json" (§15.5): the overdue judgement under a policy with a network override."""
    from pocsync.core import checks

    v = load("freshness.json")
    for c in v["cases"]:
        f = {k: c[k] for k in ("last_modified", "last_confirmed", "last_verified")}
        od = checks.overdue({"networks": c["networks"]}, f, v["policy"], now_ms=c["now_ms"])
        assert (od["reasons"] if od else []) == c["expect"], c["name"]
        assert (
            indep.overdue(
                v["policy"], c["networks"], c["last_modified"], c["last_confirmed"], c["last_verified"], c["now_ms"]
            )
            == c["expect"]
        ), c["name"]
