"""Acceptance and effect rules (PROTOCOL §8, §8.2), each with an accepted and a refused case."""

from __future__ import annotations

import base64
import json

import pytest

from pocsync.core import changeset as csmod
from pocsync.core import manifest as mf
from pocsync.core.envelope import CHANGESET_TYPE, pae
from pocsync.core.replica import Limits, MemoryState, Proof, Replica
from tests.support.fed import T0, Fed, digest, edit, edit_unchecked, put


@pytest.fixture()
def fed() -> Fed:
    return Fed()


def view_keys(rep: Replica) -> set[str]:
    return {k for k, _ in rep.state.view_refs()}


def test_put_is_accepted_and_in_view(fed: Fed) -> None:
    rep = fed.replica()
    out = edit(rep, fed, "eu", [put("DEU/technical")])
    assert out.status == "accepted" and out.seq == 1
    assert view_keys(rep) == {"DEU/technical"}
    other = fed.replica()
    for env in rep.state.all_log():
        assert other.receive(env, now_ms=T0).status == "accepted"
    assert digest(other) == digest(rep)


def _signed(fed: Fed, node: str = "eu", **kw):
    src = fed.replica()
    edit(src, fed, node, [put("DEU/technical")], **kw)
    return src.state.all_log()[0]


def test_bad_signature_is_quarantined(fed: Fed) -> None:
    env = json.loads(_signed(fed))
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    rep = fed.replica()
    before = digest(rep)
    out = rep.receive(json.dumps(env).encode(), now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "bad_signature")
    assert digest(rep) == before and rep.state.quarantined[0][1] == "bad_signature"


def test_unknown_key_is_quarantined(fed: Fed) -> None:
    rep = fed.replica()
    data = fed.forge("eu", seq=1, prev=None, hlc="1763800000000-0000", ops=[put("DEU/technical")], keyid="eu:k9")
    out = rep.receive(data, now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "unknown_key")
    assert view_keys(rep) == set()


def test_key_of_another_node_is_quarantined(fed: Fed) -> None:
    rep = fed.replica()
    data = fed.forge(
        "osce", seq=1, prev=None, hlc="1763800000000-0000", ops=[put("DEU/technical")], origin="eu"
    )  # osce's key signing an eu change-set
    out = rep.receive(data, now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "key_not_of_origin")


def test_key_outside_its_seq_range_is_quarantined(fed: Fed) -> None:
    rep = fed.replica()
    edit(rep, fed, "eu", [put("DEU/technical")])
    edit(rep, fed, "eu", [put("FRA/technical")])
    pub = fed.new_key("eu", "k2")
    m2 = fed.signed(mf.rotate_key(mf.next_version(fed.manifest.payload), "eu", name="k2", public=pub, from_seq=3))
    rep.reevaluate(now_ms=T0, manifest=m2)
    fed.manifest = m2
    head = rep.state.heads()["eu"]
    stale = fed.forge("eu", seq=3, prev=head.id, hlc="1763800000100-0000", ops=[put("ITA/technical")])
    before = digest(rep)
    out = rep.receive(stale, now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "key_out_of_range")
    assert digest(rep) == before
    ok = edit(rep, fed, "eu", [put("ITA/technical")], name="k2")
    assert ok.status == "accepted" and ok.seq == 3


def test_out_of_scope_op_refused_and_later_changesets_apply(fed: Fed) -> None:
    rep = fed.replica()
    out = edit_unchecked(rep, fed, "eu", [put("JPN/technical"), put("DEU/technical")])  # a broken origin
    assert out.status == "accepted"
    assert [(r.index, r.reason) for r in out.refused] == [(0, "out_of_scope")]
    assert view_keys(rep) == {"DEU/technical"}
    out2 = edit(rep, fed, "eu", [put("FRA/diplomatic")])
    assert out2.status == "accepted" and not out2.refused
    assert view_keys(rep) == {"DEU/technical", "FRA/diplomatic"}


def test_gap_is_parked_then_applied_once_filled(fed: Fed) -> None:
    src = fed.replica()
    edit(src, fed, "eu", [put("DEU/technical")])
    edit(src, fed, "eu", [put("FRA/technical")], t=T0 + 1)
    edit(src, fed, "eu", [put("ITA/technical")], t=T0 + 2)
    e1, e2, e3 = src.state.all_log()
    rep = fed.replica()
    assert (rep.receive(e3, now_ms=T0).status, rep.receive(e3, now_ms=T0).reason) == ("parked", "gap")
    assert rep.receive(e2, now_ms=T0).reason == "gap"
    assert view_keys(rep) == set()
    out = rep.receive(e1, now_ms=T0)
    assert out.status == "accepted" and [o.seq for o in out.also_accepted] == [2, 3]
    assert digest(rep) == digest(src) and not rep.state.parked


def test_duplicate_is_ignored(fed: Fed) -> None:
    env = _signed(fed)
    rep = fed.replica()
    assert rep.receive(env, now_ms=T0).status == "accepted"
    d = digest(rep)
    out = rep.receive(env, now_ms=T0)
    assert (out.status, out.reason) == ("duplicate", "duplicate")
    assert digest(rep) == d and len(rep.state.log) == 1


def test_hlc_beyond_skew_is_parked_until_clock_catches_up(fed: Fed) -> None:
    env = _signed(fed, t=T0 + 600_000)  # signed 10 minutes in our future
    rep = fed.replica(Limits(max_clock_skew_ms=300_000))
    out = rep.receive(env, now_ms=T0)
    assert (out.status, out.reason) == ("parked", "clock_skew")
    assert view_keys(rep) == set()
    assert rep.retry_parked(now_ms=T0 + 100_000)[0].status == "parked"
    assert rep.retry_parked(now_ms=T0 + 300_001)[0].status == "accepted"
    assert view_keys(rep) == {"DEU/technical"}


def test_hlc_regression_is_quarantined(fed: Fed) -> None:
    rep = fed.replica()
    first = edit(rep, fed, "eu", [put("DEU/technical")], t=T0 + 5000)
    data = fed.forge("eu", seq=2, prev=first.cs_id, hlc="1763800000001-0000", ops=[put("FRA/technical")])
    out = rep.receive(data, now_ms=T0 + 5000)
    assert (out.status, out.reason) == ("quarantined", "hlc_regression")


def test_unknown_manifest_version_is_parked_then_applied(fed: Fed) -> None:
    old = fed.replica()
    pub = fed.new_key("eu", "k2")
    m2 = fed.signed(mf.rotate_key(mf.next_version(fed.manifest.payload), "eu", name="k2", public=pub, from_seq=1))
    new = Replica(MemoryState(), m2)
    edit(new, fed, "eu", [put("DEU/technical")], name="k2")
    env = new.state.all_log()[0]
    out = old.receive(env, now_ms=T0)
    assert (out.status, out.reason) == ("parked", "manifest_unknown")
    old.reevaluate(now_ms=T0, manifest=m2)
    assert view_keys(old) == {"DEU/technical"} and digest(old) == digest(new)


def test_oversize_envelope_is_quarantined_before_parsing(fed: Fed) -> None:
    rep = fed.replica(Limits(max_envelope_bytes=1000))
    out = rep.receive(b"{" + b" " * 2000 + b"}", now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "oversize")
    big = fed.forge("eu", seq=1, prev=None, hlc="1763800000000-0000", ops=[put("DEU/technical", notes="x" * 2000)])
    assert rep.receive(big, now_ms=T0).reason == "oversize"


@pytest.mark.parametrize(
    "blob,reason",
    [
        (b"not json", "malformed_json"),
        (b'{"payloadType": "x", "payloadType": "y"}', "duplicate_key"),
        (b'{"payloadType": 1.5}', "float_not_allowed"),
        (b"\xff\xfe", "not_utf8"),
        (b"[]", "bad_envelope"),
    ],
)
def test_malformed_envelopes_are_quarantined(fed: Fed, blob: bytes, reason: str) -> None:
    rep = fed.replica()
    out = rep.receive(blob, now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", reason)


def _sign_raw(fed: Fed, payload: bytes, node: str = "eu") -> bytes:
    sig = fed.key(node).sign(pae(CHANGESET_TYPE, payload))
    return json.dumps(
        {
            "payloadType": CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": f"{node}:k1", "sig": base64.b64encode(sig).decode()}],
        }
    ).encode()


def test_signed_payload_with_duplicate_keys_is_quarantined(fed: Fed) -> None:
    payload = (
        b'{"type":"pocsync.changeset/v1","origin":"eu","seq":1,"seq":2,"prev":null,'
        b'"hlc":"1763800000000-0000","manifest":1,"author":"a","ops":[]}'
    )
    out = fed.replica().receive(_sign_raw(fed, payload), now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "duplicate_key")


def test_signed_payload_that_is_not_json_is_quarantined(fed: Fed) -> None:
    out = fed.replica().receive(_sign_raw(fed, b"{oops"), now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "malformed_json")


def test_signed_payload_with_bad_structure_is_quarantined(fed: Fed) -> None:
    payload = json.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": "eu",
            "seq": 0,
            "prev": None,
            "hlc": "1763800000000-0000",
            "manifest": 1,
            "author": "a",
            "ops": [put("DEU/technical")],
        }
    ).encode()
    out = fed.replica().receive(_sign_raw(fed, payload), now_ms=T0)
    assert (out.status, out.reason) == ("quarantined", "bad_changeset")


def test_bad_prev_at_chain_start_is_quarantined(fed: Fed) -> None:
    data = fed.forge("eu", seq=1, prev="sha256:" + "0" * 64, hlc="1763800000000-0000", ops=[put("DEU/technical")])
    assert fed.replica().receive(data, now_ms=T0).reason == "bad_prev"


def test_prev_mismatch_is_quarantined(fed: Fed) -> None:
    rep = fed.replica()
    edit(rep, fed, "eu", [put("DEU/technical")])
    data = fed.forge("eu", seq=2, prev="sha256:" + "1" * 64, hlc="1763800000001-0000", ops=[put("FRA/technical")])
    assert rep.receive(data, now_ms=T0).reason == "prev_mismatch"


@pytest.mark.parametrize(
    "bad,reason",
    [
        ({"organisation": ""}, "missing_organisation"),
        ({"emails": [], "phones": []}, "missing_contact"),
        ({"person": "B. Example"}, "person_on_technical"),
        ({"state": "FRA"}, "key_mismatch"),
        ({"kind": "diplomatic"}, "key_mismatch"),
    ],
)
def test_invalid_entries_are_refused_and_change_nothing(fed: Fed, bad: dict, reason: str) -> None:
    rep = fed.replica()
    edit(rep, fed, "eu", [put("DEU/technical")])
    before = digest(rep)
    head = rep.state.heads()["eu"]
    data = fed.forge("eu", seq=2, prev=head.id, hlc="1763800000001-0000", ops=[put("DEU/technical", **bad)])
    out = rep.receive(data, now_ms=T0)
    assert out.status == "accepted"
    assert [r.reason for r in out.refused] == [reason]
    assert digest(rep) == before


def test_unknown_op_and_bad_key_are_refused(fed: Fed) -> None:
    rep = fed.replica()
    data = fed.forge(
        "eu",
        seq=1,
        prev=None,
        hlc="1763800000000-0000",
        ops=[
            {"op": "rename", "key": "DEU/technical"},
            {"op": "delete", "key": "DEU/other"},
            {"op": "delete", "key": "deu/technical"},
        ],
    )
    out = rep.receive(data, now_ms=T0)
    assert [r.reason for r in out.refused] == ["unknown_op", "bad_key", "bad_key"]


# --- merge semantics -------------------------------------------------------------------
def test_delete_by_one_origin_leaves_another_origins_listing(fed: Fed) -> None:
    rep = fed.replica()
    edit(rep, fed, "eu", [put("DEU/diplomatic", position="EU listing")], t=T0)
    edit(rep, fed, "osce", [put("DEU/diplomatic", position="OSCE listing")], t=T0 + 10)
    assert rep.state.winner("DEU/diplomatic").origin == "osce"
    edit(rep, fed, "osce", [{"op": "delete", "key": "DEU/diplomatic"}], t=T0 + 20)
    w = rep.state.winner("DEU/diplomatic")
    assert w.origin == "eu" and w.entry["position"] == "EU listing"
    edit(rep, fed, "eu", [{"op": "delete", "key": "DEU/diplomatic"}], t=T0 + 30)
    assert rep.state.winner("DEU/diplomatic") is None


def test_withdrawal_removes_key_everywhere_until_a_later_put(fed: Fed) -> None:
    rep = fed.replica()
    edit(rep, fed, "eu", [put("ITA/diplomatic")], t=T0)
    edit(rep, fed, "osce", [put("ITA/diplomatic")], t=T0 + 1)
    edit(rep, fed, "eu", [{"op": "withdraw", "key": "ITA/diplomatic"}], t=T0 + 2)
    assert "ITA/diplomatic" not in view_keys(rep)
    # a delete after the withdrawal does not resurrect the other origin's older listing
    edit(rep, fed, "eu", [{"op": "delete", "key": "ITA/diplomatic"}], t=T0 + 3)
    assert "ITA/diplomatic" not in view_keys(rep)
    edit(rep, fed, "osce", [put("ITA/diplomatic", position="re-nominated")], t=T0 + 4)
    assert rep.state.winner("ITA/diplomatic").entry["position"] == "re-nominated"


def test_holder_epoch_is_kept_for_same_holder_and_bumped_on_change(fed: Fed) -> None:
    rep = fed.replica()
    a = edit(rep, fed, "eu", [put("DEU/diplomatic")], t=T0)
    e1 = rep.state.winner("DEU/diplomatic").entry["holder_epoch"]
    assert e1 == rep.state.logged("eu", a.seq).hlc
    edit(rep, fed, "eu", [put("DEU/diplomatic", position="Ambassador")], t=T0 + 5)
    assert rep.state.winner("DEU/diplomatic").entry["holder_epoch"] == e1
    c = edit(rep, fed, "osce", [put("DEU/diplomatic", person="C. Example")], t=T0 + 9)
    assert rep.state.winner("DEU/diplomatic").entry["holder_epoch"] == rep.state.logged("osce", c.seq).hlc > e1


# --- equivocation -------------------------------------------------------------------------
def test_equivocation_both_branches_lose_effect_and_restart_lets_origin_publish(fed: Fed) -> None:
    a, b = fed.replica(), fed.replica()
    first = edit(a, fed, "eu", [put("DEU/technical")], t=T0)
    b.receive(a.state.all_log()[0], now_ms=T0)
    fork_a = fed.forge("eu", seq=2, prev=first.cs_id, hlc="1763800000010-0000", ops=[put("FRA/technical")])
    fork_b = fed.forge("eu", seq=2, prev=first.cs_id, hlc="1763800000010-0000", ops=[put("ITA/technical")])
    assert a.receive(fork_a, now_ms=T0).status == "accepted"
    assert b.receive(fork_b, now_ms=T0).status == "accepted"
    a3 = fed.forge(
        "eu",
        seq=3,
        prev=csmod.changeset_id(json_payload(fork_a)),
        hlc="1763800000020-0000",
        ops=[put("DEU/diplomatic")],
    )
    assert a.receive(a3, now_ms=T0).status == "accepted"
    assert digest(a) != digest(b)
    assert a.receive(fork_b, now_ms=T0).status == "equivocation"
    b.add_proof(Proof("eu", 2, fork_b, fork_a), now_ms=T0)
    assert view_keys(a) == view_keys(b) == {"DEU/technical"}
    assert digest(a) == digest(b)
    with pytest.raises(Exception, match="frozen"):
        edit(a, fed, "eu", [put("FRA/technical")])
    # the root declares a chain restart at seq 10 with a new key, chained on the last good change-set
    pub = fed.new_key("eu", "k2")
    m2 = fed.signed(
        mf.restart_chain(
            mf.next_version(fed.manifest.payload), "eu", name="k2", public=pub, from_seq=10, prev=first.cs_id
        )
    )
    for rep in (a, b):
        rep.reevaluate(now_ms=T0, manifest=m2)
    out = edit(a, fed, "eu", [put("FRA/technical", position="after restart")], t=T0 + 100, name="k2")
    assert out.status == "accepted" and out.seq == 10
    assert b.receive(a.state.log_envelope("eu", 10), now_ms=T0 + 100).status == "accepted"
    assert digest(a) == digest(b)
    assert view_keys(b) == {"DEU/technical", "FRA/technical"}


def json_payload(env: bytes) -> bytes:
    return base64.b64decode(json.loads(env)["payload"])


# --- manifest history -----------------------------------------------------------------------
def test_retroactive_revocation_rederives_the_view(fed: Fed) -> None:
    rep = fed.replica()
    edit(rep, fed, "eu", [put("DEU/technical")], t=T0)
    edit(rep, fed, "eu", [put("FRA/technical")], t=T0 + 1)
    edit(rep, fed, "eu", [put("ITA/technical")], t=T0 + 2)  # seq 3: say the key was stolen before this
    assert view_keys(rep) == {"DEU/technical", "FRA/technical", "ITA/technical"}
    pub = fed.new_key("eu", "k2")
    m2 = fed.signed(mf.rotate_key(mf.next_version(fed.manifest.payload), "eu", name="k2", public=pub, from_seq=3))
    rep.reevaluate(now_ms=T0 + 3, manifest=m2)
    assert view_keys(rep) == {"DEU/technical", "FRA/technical"}
    assert any(q[1] == "key_out_of_range" for q in rep.state.quarantined)
    assert rep.state.heads()["eu"].seq == 2
