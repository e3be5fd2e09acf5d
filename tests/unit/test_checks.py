"""Communication checks and confirmations (PROTOCOL.md §15, ADR 24): receipt rules, scope, merge.

The `check` op (feature comm-checks) and the `confirm` op (feature freshness): every refusal reason,
refused by peers and before signing at the origin, and a merge that gives one digest whatever the
order and duplication of delivery — with `verified` never erased by a later negative result.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import checks
from pocsync.core import manifest as mf
from pocsync.core.changeset import changeset_id
from pocsync.core.envelope import parse
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import EntryError, ManifestError
from tests.support.data import entry
from tests.support.fed import T0, Fed, edit

FED = Fed()
M_OFF = FED.signed(mf.set_features(mf.next_version(FED.manifest.payload), ["toy-note"]))
M_ON = FED.signed(mf.set_features(mf.next_version(M_OFF.payload), ["comm-checks", "freshness"]))
LATER = T0 + 86_400_000
EMAIL = checks.channel_id("email", "cert-deu@example.org")
PHONE = checks.channel_id("phone", "+493012345678")


def chk(key: str = "DEU/technical", channel: str = EMAIL, result: str = "acknowledged", **more: Any) -> dict:
    op: dict[str, Any] = {"op": "check", "key": key, "channel": channel, "result": result, "campaign": None}
    op.update(
        {
            "sent": {"deadline_ms": T0 + 1000},
            "acknowledged": {"response_seconds": 42},
            "bounced": {"smtp_code": 550},
        }.get(result, {})
    )
    op.update(more)
    return op


def run(manifest: mf.Manifest, envs: list[bytes]) -> Replica:
    rep = Replica(MemoryState(), manifest)
    for e in envs:
        rep.receive(e, now_ms=LATER)
    return rep


def one(op: dict, origin: str = "eu") -> tuple[str, str] | None:
    """The reason peers refuse ``op`` signed by ``origin`` (None when it takes effect)."""
    rep = run(M_ON, [FED.forge(origin, seq=1, prev=None, hlc=f"{T0:013d}-0000", ops=[op])])
    refused = list(rep.state.refusals.values())
    return refused[0].reason if refused else None


# --- channels ------------------------------------------------------------------------------------------
def test_channel_id_hashes_the_normalised_value_not_the_position() -> None:
    assert checks.channel_id("email", "  CERT-DEU@Example.ORG ") == EMAIL
    assert checks.channel_id("phone", "+49 30 1234-5678") == PHONE
    assert checks.channel_id("phone", "+493012345678") != checks.channel_id("phone", "493012345678")
    assert EMAIL.startswith("email:") and len(EMAIL) == 6 + 64 and checks.CHANNEL_RE.match(EMAIL)
    e = entry("DEU/technical", emails=["a@example.org", "b@example.org"], phones=["+15550100"], full=True)
    assert [label for label, _ in checks.channels(e)] == ["email 1", "email 2", "phone 1"]
    assert checks.resolve_channel(e, "email:2") == checks.channel_id("email", "b@example.org")
    assert checks.resolve_channel(e, "phone:1") == checks.channel_id("phone", "+15550100")
    for bad in ("phone:2", "email:0", "fax:1", "email:", "email:1x", "email:-1"):
        with pytest.raises(EntryError) as err:
            checks.resolve_channel(e, bad)
        assert err.value.reason == "bad_channel"


# --- receipt rules: one test per refusal ------------------------------------------------------------------
def test_valid_checks_and_confirm_take_effect() -> None:
    for op in (
        chk(),
        chk(result="sent"),
        chk(result="no_response"),
        chk(result="bounced"),
        chk(channel=PHONE, result="answered"),
        chk(channel=PHONE, result="no_answer"),
        chk(channel=PHONE, result="wrong_number"),
        chk(campaign="eu-2026-q4"),
        {"op": "confirm", "key": "DEU/technical"},
        {"op": "confirm", "key": "FRA/diplomatic"},
    ):
        assert one(op) is None, op


@pytest.mark.parametrize(
    "op,reason",
    [
        (chk(key="DEU"), "bad_key"),
        (chk(key="DEU/other"), "bad_key"),
        ({"op": "confirm", "key": "deu/technical"}, "bad_key"),
        (chk(key="JPN/technical"), "out_of_scope"),  # eu's scope is DEU, FRA, ITA
        ({"op": "confirm", "key": "UKR/technical"}, "out_of_scope"),
        (chk(channel="email:" + "A" * 64), "bad_check"),  # upper-case hex
        (chk(channel="email:" + "a" * 63), "bad_check"),
        (chk(channel="fax:" + "a" * 64), "bad_check"),
        (chk(channel="email 1"), "bad_check"),  # a position, not a hash
        (chk(channel=None), "bad_check"),
        (chk(result="answered"), "bad_check"),  # a phone result on an email channel
        (chk(channel=PHONE, result="acknowledged"), "bad_check"),
        (chk(result="ok"), "bad_check"),
        (chk(campaign="Bad Campaign"), "bad_check"),
        (chk(campaign=""), "bad_check"),
        (chk(campaign=5), "bad_check"),
        (chk(result="sent", deadline_ms=None), "bad_check"),  # sent needs deadline_ms
        (chk(result="sent", deadline_ms=-1), "bad_check"),
        (chk(result="sent", deadline_ms=True), "bad_check"),
        (chk(response_seconds=None), "bad_check"),  # acknowledged needs response_seconds
        (chk(response_seconds="42"), "bad_check"),
        (chk(result="bounced", smtp_code=250), "bad_check"),  # a bounce keeps a 4xx/5xx reply code
        (chk(result="bounced", smtp_code=600), "bad_check"),
        (chk(result="bounced", smtp_code=None), "bad_check"),
        (chk(result="no_response", smtp_code=550), "bad_check"),  # fields of another result
        (chk(result="sent", response_seconds=3), "bad_check"),
        (chk(channel=PHONE, result="answered", deadline_ms=5), "bad_check"),
    ],
)
def test_each_refusal_by_peers_and_before_signing_at_the_origin(op: dict, reason: str) -> None:
    assert one(op) == reason
    rep = Replica(MemoryState(), M_ON)
    [r] = rep.check_ops([op], me="eu", now_ms=T0)
    assert r.reason == reason
    with pytest.raises(EntryError) as err:
        edit(rep, FED, "eu", [op])
    assert err.value.reason == reason and "nothing was signed" in err.value.message
    assert not rep.state.log  # nothing signed, nothing stored


def test_features_gate_each_kind_separately() -> None:
    only_checks = FED.signed(mf.set_features(mf.next_version(M_OFF.payload), ["comm-checks"]))
    env = FED.forge(
        "eu", seq=1, prev=None, hlc=f"{T0:013d}-0000", ops=[chk(), {"op": "confirm", "key": "DEU/technical"}]
    )
    for m, want in ((M_OFF, ["feature_off", "feature_off"]), (only_checks, ["feature_off"]), (M_ON, [])):
        rep = run(m, [env])
        assert [r.reason for r in sorted(rep.state.refusals.values(), key=lambda r: r.index)] == want
    assert set(run(M_ON, [env]).state.records) == {
        ("check", f"DEU/technical/{EMAIL}"),
        ("verified", f"DEU/technical/{EMAIL}"),
        ("confirm", "DEU/technical"),
    }


def test_unknown_members_are_ignored() -> None:
    assert one(chk(extra={"anything": 1})) is None


# --- merge: latest result by rank, last_verified never erased, any order, duplicates ----------------------
ACTIONS = st.tuples(
    st.sampled_from(["eu", "osce", "un", "arf"]),
    st.sampled_from(["acknowledged", "sent", "no_response", "bounced", "answered", "no_answer", "confirm", "bad"]),
    st.sampled_from(["DEU", "FRA", "UKR", "JPN"]),
    st.sampled_from([None, "c1", "c2"]),
    st.integers(0, 3),  # hlc step: 0 gives equal hlcs across origins (the tie-break by origin)
)


def times(actions: list[tuple]) -> list[int]:
    """The wall clock of each action: steps of 0–3 ms (0: equal hlcs across origins, the tie-break by origin);
    an origin never repeats its own hlc (an honest origin's hlcs increase, PROTOCOL.md §3)."""
    clock, last, out = T0, {}, []
    for origin, *_rest, dt in actions:
        clock = max(clock + dt, last.get(origin, -1) + 1)
        last[origin] = clock
        out.append(clock)
    return out


def history(actions: list[tuple]) -> list[bytes]:
    heads: dict[str, tuple[int, str | None]] = {}
    out = []
    for (origin, result, state, campaign, _dt), clock in zip(actions, times(actions)):
        key = f"{state}/technical"
        if result == "confirm":
            op: dict[str, Any] = {"op": "confirm", "key": key}
        elif result == "bad":
            op = chk(key, result="bounced", smtp_code=200)
        else:
            op = chk(
                key, channel=PHONE if result in ("answered", "no_answer") else EMAIL, result=result, campaign=campaign
            )
        seq, prev = heads.get(origin, (0, None))
        env = FED.forge(origin, seq=seq + 1, prev=prev, hlc=f"{clock:013d}-0000", ops=[op])
        heads[origin] = (seq + 1, changeset_id(parse(env, max_bytes=1 << 20).payload))
        out.append(env)
    return out


def expected(actions: list[tuple]) -> dict[tuple[str, str], tuple]:
    """The registers by the rule of §15.3, computed directly: greatest (hlc, origin) per record."""
    out: dict[tuple[str, str], tuple] = {}
    for (origin, result, state, campaign, _dt), clock in zip(actions, times(actions)):
        if result == "bad" or not FED.manifest.nodes[origin].covers(state, 1):
            continue
        key = f"{state}/technical"
        rank = (f"{clock:013d}-0000", origin)
        if result == "confirm":
            names = [("confirm", key)]
        else:
            ch = PHONE if result in ("answered", "no_answer") else EMAIL
            names = [("check", f"{key}/{ch}")]
            if result in checks.POSITIVE:
                names.append(("verified", f"{key}/{ch}"))
            if campaign:
                names.append(("campaign", f"{campaign}/{key}/{ch}"))
        for n in names:
            if n not in out or rank > out[n][0]:
                out[n] = (rank, result)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(ACTIONS, min_size=1, max_size=14), data=st.data())
def test_merge_is_order_free_and_last_verified_survives_later_negatives(actions, data) -> None:
    envs = history(actions)
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=4))))
    ref, other = run(M_ON, envs), run(M_ON, order)
    assert other.state.digest() == ref.state.digest()
    assert other.state.refusals == ref.state.refusals
    got = {k: (a.hlc, a.origin, a.entry.get("result", "confirm")) for k, a in ref.state.records.items()}
    want = {k: (r[0], r[1], res) for k, (r, res) in expected(actions).items()}
    assert got == want
    # a verified record is a positive result, whatever came after it
    for (ns, _k), a in ref.state.records.items():
        if ns == "verified":
            assert a.entry["result"] in checks.POSITIVE
    # switching the feature off withdraws every effect; on again restores the same digest
    switched = run(M_OFF, order)
    assert not switched.state.records
    switched.reevaluate(now_ms=LATER, manifest=M_ON)
    assert switched.state.digest() == ref.state.digest()


def test_a_later_sent_or_no_response_does_not_erase_last_verified() -> None:
    acts = [
        ("eu", "acknowledged", "DEU", "c1", 1),
        ("osce", "sent", "DEU", "c2", 1),
        ("eu", "no_response", "DEU", "c2", 1),
    ]
    rep = run(M_ON, history(acts))
    recs = rep.state.records
    assert recs[("check", f"DEU/technical/{EMAIL}")].entry["result"] == "no_response"
    assert recs[("verified", f"DEU/technical/{EMAIL}")].hlc == f"{T0 + 1:013d}-0000"
    assert recs[("campaign", f"c1/DEU/technical/{EMAIL}")].entry["result"] == "acknowledged"
    assert recs[("campaign", f"c2/DEU/technical/{EMAIL}")].entry["result"] == "no_response"


# --- freshness derivations and policy ---------------------------------------------------------------------
def test_freshness_counts_only_current_channels_and_overdue_follows_the_policy() -> None:
    e = entry("DEU/technical", networks=["csirt-net"], full=True)
    modified = f"{T0:013d}-0000"
    day = checks.DAY_MS
    f = checks.freshness(
        e,
        modified_hlc=modified,
        latest={EMAIL: {"result": "acknowledged", "hlc": "x"}},
        verified={
            EMAIL: f"{T0 + day:013d}-0000",
            checks.channel_id("email", "old@example.org"): f"{T0 + 5 * day:013d}-0000",
        },
        confirmed_hlc=None,
    )
    assert f["last_verified"] == f"{T0 + day:013d}-0000"  # the old address's verification does not count
    assert [(c["label"], c["last_result"]) for c in f["channels"]] == [("email 1", "acknowledged"), ("phone 1", None)]
    policy = {"confirm_days": 10, "verify_days": 20, "networks": {"csirt-net": {"verify_days": 3}}}
    assert checks.periods(policy, ["csirt-net"]) == (10, 3)
    assert checks.periods(policy, ["other"]) == (10, 20)
    assert checks.periods(None) == (365, 180)
    assert checks.overdue(e, f, policy, now_ms=T0 + 3 * day) is None
    assert checks.overdue(e, f, policy, now_ms=T0 + 4 * day + 1)["reasons"] == ["verify"]
    assert checks.overdue(e, f, policy, now_ms=T0 + 11 * day)["reasons"] == ["confirm", "verify"]
    confirmed = dict(f, last_confirmed=f"{T0 + 9 * day:013d}-0000", last_verified=f"{T0 + 9 * day:013d}-0000")
    assert checks.overdue(e, confirmed, policy, now_ms=T0 + 11 * day) is None
    never = dict(f, last_verified=None)  # never verified: one period from last_modified
    assert checks.overdue(e, never, policy, now_ms=T0 + 3 * day) is None
    assert checks.overdue(e, never, policy, now_ms=T0 + 3 * day + 1)["reasons"] == ["verify"]


@pytest.mark.parametrize(
    "policy",
    [
        {"confirm_days": 0},
        {"verify_days": 3651},
        {"confirm_days": "365"},
        {"confirm_days": True},
        {"period_days": 5},
        {"networks": []},
        {"networks": {"x": {"confirm_days": 0}}},
        {"networks": {"x": 5}},
        {"networks": {" ": {}}},
        {"networks": {"x": {"other": 1}}},
    ],
)
def test_freshness_policy_is_validated(policy: dict) -> None:
    with pytest.raises(ManifestError):
        mf.set_policy(M_ON.payload, "freshness", policy)


def test_freshness_policy_accepted() -> None:
    p = mf.set_policy(
        M_ON.payload,
        "freshness",
        {"confirm_days": 365, "verify_days": 180, "networks": {"csirt-net": {"confirm_days": 120}}},
    )
    assert FED.signed(p).policy["freshness"]["networks"]["csirt-net"] == {"confirm_days": 120}


def test_check_op_builder_makes_exactly_what_peers_accept() -> None:
    op = checks.check_op("DEU/technical", EMAIL, "bounced", campaign="eu-q4", smtp_code=550)
    assert op == {
        "op": "check",
        "key": "DEU/technical",
        "channel": EMAIL,
        "result": "bounced",
        "campaign": "eu-q4",
        "smtp_code": 550,
    }
    assert one(op) is None
    for bad in (dict(result="bounced"), dict(result="sent", smtp_code=550), dict(result="answered")):
        with pytest.raises(EntryError):
            checks.check_op("DEU/technical", EMAIL, **bad)
    with pytest.raises(EntryError):
        checks.check_op("DEU", EMAIL, "sent", deadline_ms=1)
