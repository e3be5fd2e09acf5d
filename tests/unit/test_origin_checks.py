"""The origin applies every rule its peers apply before it signs (issue 9).

``Replica.edit`` refuses, with nothing signed or stored, exactly the ops that a peer would refuse on receipt
(the same ``op_refusal``): scope at the next seq, structure, kind.  Checked by example and by a Hypothesis
property over random batches, scopes and orders.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import manifest as mf
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import EntryError
from tests.support.data import entry
from tests.support.fed import T0, Fed, digest, edit, edit_unchecked, put

FED = Fed()
KEYS = ["DEU/diplomatic", "DEU/technical", "FRA/technical", "UKR/technical", "JPN/technical"]


def snapshot(rep: Replica) -> tuple[Any, ...]:
    st = rep.state
    return (digest(rep), dict(st.heads()), len(st.all_log()), dict(st.refusals))  # type: ignore[attr-defined]


def test_out_of_scope_put_withdraw_and_delete_are_not_signed() -> None:
    rep = FED.replica()
    for ops in (
        [put("DEU/technical"), put("JPN/technical")],
        [{"op": "withdraw", "key": "UKR/technical"}],
        [{"op": "delete", "key": "JPN/diplomatic"}],
    ):
        before = snapshot(rep)
        with pytest.raises(EntryError) as exc:
            edit(rep, FED, "eu", ops)
        assert exc.value.reason == "out_of_scope" and "nothing was signed" in exc.value.message
        bad = ops[-1]
        assert exc.value.detail["refusals"] == [
            {
                "index": len(ops) - 1,
                "op": bad["op"],
                "key": bad["key"],
                "reason": "out_of_scope",
                "message": f"{bad['key'][:3]} is outside the scope of eu at seq 1",
            }
        ]
        assert snapshot(rep) == before
    assert edit(rep, FED, "eu", [put("DEU/technical")]).seq == 1  # the seq was not used up


def test_structure_and_kind_rules_are_checked_before_signing() -> None:
    rep = FED.replica()
    cases = [
        ([put("DEU/technical", organisation="")], "missing_organisation"),
        ([put("DEU/technical", person="A. Example")], "person_on_technical"),
        ([{"op": "put", "key": "DEU/technical", "entry": entry("FRA/technical", full=True)}], "key_mismatch"),
        ([{"op": "put", "key": "DEU/consular", "entry": entry("DEU/technical", full=True)}], "bad_key"),
        ([{"op": "rename", "key": "DEU/technical"}], "unknown_op"),
    ]
    for ops, reason in cases:
        before = snapshot(rep)
        with pytest.raises(EntryError) as exc:
            edit(rep, FED, "eu", ops)
        assert exc.value.reason == reason, exc.value.message
        assert snapshot(rep) == before


def test_scope_is_judged_at_the_next_seq() -> None:
    fed = Fed()
    rep = fed.replica()
    edit(rep, fed, "eu", [put("DEU/technical")])  # seq 1
    p = mf.set_scope(mf.next_version(fed.manifest.payload), "eu", states=["FRA"], from_seq=2)
    rep.reevaluate(now_ms=T0, manifest=fed.signed(p))
    with pytest.raises(EntryError, match="outside the scope of eu at seq 2"):
        edit(rep, fed, "eu", [put("DEU/diplomatic")])
    assert edit(rep, fed, "eu", [put("FRA/technical")], t=T0 + 1).seq == 2


op_strategy = st.one_of(
    st.builds(lambda k, v: put(k, position=f"variant {v}"), st.sampled_from(KEYS), st.integers(0, 3)),
    st.builds(lambda k: put(k, organisation=""), st.sampled_from(KEYS)),
    st.builds(lambda k: put(k, person="B. Example") if k.endswith("technical") else put(k), st.sampled_from(KEYS)),
    st.builds(lambda o, k: {"op": o, "key": k}, st.sampled_from(["delete", "withdraw"]), st.sampled_from(KEYS)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.tuples(st.sampled_from(["eu", "osce", "arf"]), st.lists(op_strategy, min_size=1, max_size=4)),
        min_size=1,
        max_size=12,
    ),
    data=st.data(),
)
def test_the_origin_refuses_exactly_what_peers_refuse(batches, data) -> None:
    """For any batch: either the origin signs it and no peer refuses any op of it, or the origin refuses it,
    changes nothing, and a hostile origin signing the same batch has exactly those ops refused by a peer."""
    reps = {n: FED.replica() for n in ("eu", "osce", "arf")}
    signed: list[bytes] = []
    t = T0
    for node, ops in batches:
        t += 10
        rep = reps[node]
        before = snapshot(rep)
        try:
            out = edit(rep, FED, node, ops, t=t)
        except EntryError as exc:
            assert snapshot(rep) == before
            refused_at_origin = [(r["index"], r["reason"]) for r in exc.detail["refusals"]]
            hostile = Replica(MemoryState(), FED.manifest)
            for env in rep.state.all_log():
                hostile.receive(env, now_ms=t)
            forced = edit_unchecked(hostile, FED, node, ops, t=t)
            assert [(r.index, r.reason) for r in forced.refused] == refused_at_origin
        else:
            assert out.status == "accepted" and not out.refused
            signed.append(rep.state.log_envelope(node, out.seq))
    peer = FED.replica()
    for env in data.draw(st.permutations(signed)):
        peer.receive(env, now_ms=t + 1000)
    assert not peer.state.refusals  # type: ignore[attr-defined]
    assert len(peer.state.all_log()) == len(signed)


def test_check_ops_reports_what_edit_would_refuse_and_changes_nothing() -> None:
    rep = FED.replica()
    before = snapshot(rep)
    refused = rep.check_ops(
        [put("DEU/technical"), {"op": "withdraw", "key": "JPN/technical"}, put("FRA/technical", organisation="")],
        me="eu",
        now_ms=T0,
    )
    assert [(r.index, r.key, r.reason) for r in refused] == [
        (1, "JPN/technical", "out_of_scope"),
        (2, "FRA/technical", "missing_organisation"),
    ]
    assert snapshot(rep) == before
    assert rep.check_ops([put("DEU/technical")], me="eu", now_ms=T0) == []
