"""Property tests: any order and any duplication of delivery gives the same view digest.

Histories are random multi-origin edit sequences over overlapping scopes, with
conflicting keys, deletes, withdrawals, re-puts, out-of-scope ops, invalid entries
and (optionally) an equivocating origin.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core.replica import Replica
from tests.support.data import entry
from tests.support.fed import T0, Fed, digest, edit_or_force

KEYS = ["DEU/diplomatic", "DEU/technical", "FRA/diplomatic", "ITA/technical", "UKR/technical", "JPN/technical"]
ORIGINS = ["un", "eu", "osce", "arf"]
FED = Fed()  # keys are expensive to make; one federation serves every example
LATER = T0 + 10 * 86_400_000  # deliver long after signing: no clock-skew parking

action = st.tuples(
    st.sampled_from(ORIGINS),
    st.sampled_from(["put", "put", "put", "delete", "withdraw", "invalid"]),
    st.sampled_from(KEYS),
    st.integers(0, 3),  # entry variant (conflicting content)
    st.integers(0, 2000),  # ms the origin's clock advances
)


def make_ops(kind: str, key: str, variant: int) -> list[dict[str, Any]]:
    if kind == "put":
        return [{"op": "put", "key": key, "entry": entry(key, position=f"variant {variant}", full=True)}]
    if kind == "invalid":
        return [{"op": "put", "key": key, "entry": entry(key, organisation="", full=True)}]
    return [{"op": kind, "key": key}]


def history(actions: list[tuple[str, str, str, int, int]], *, fork: bool = False) -> list[bytes]:
    """Each origin signs its own chain on its own replica; returns every envelope made."""
    reps = {o: FED.replica() for o in ORIGINS}
    clocks = {o: T0 for o in ORIGINS}
    out: list[bytes] = []
    for origin, kind, key, variant, dt in actions:
        clocks[origin] += dt
        rep = reps[origin]
        res = edit_or_force(rep, FED, origin, make_ops(kind, key, variant), t=clocks[origin])
        out.append(rep.state.log_envelope(origin, res.seq))
    if fork:  # the first origin with a change-set signs a second, different change-set at its last seq
        for origin in ORIGINS:
            head = reps[origin].state.heads().get(origin)
            if head is None:
                continue
            prev = reps[origin].state.logged(origin, head.seq - 1)
            out.append(
                FED.forge(
                    origin,
                    seq=head.seq,
                    prev=prev.id if prev else None,
                    hlc=head.hlc,
                    ops=[
                        {"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical", notes="fork", full=True)}
                    ],
                )
            )
            break
    return out


def deliver(envelopes: list[bytes]) -> Replica:
    rep = FED.replica()
    for env in envelopes:
        rep.receive(env, now_ms=LATER)
    return rep


def refusals(rep: Replica) -> set[tuple[str, int, str]]:
    """Refused ops, less those of an equivocated branch (which branch is logged depends on order)."""
    return {(r.cs_id, r.index, r.reason) for r in rep.state.refusals.values() if r.reason != "equivocation"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=25), data=st.data(), fork=st.booleans())
def test_any_order_and_duplication_gives_the_same_digest(actions, data, fork) -> None:
    envs = history(actions, fork=fork)
    reference = deliver(envs)
    for _ in range(3):
        order = data.draw(st.permutations(envs))
        dups = data.draw(st.lists(st.sampled_from(envs), max_size=6))
        mixed = data.draw(st.permutations(order + dups))
        other = deliver(mixed)
        assert digest(other) == digest(reference)
        assert refusals(other) == refusals(reference)
        assert set(other.state.winners) == set(reference.state.winners)
        assert other.state.deaths == reference.state.deaths  # token deaths are order-free too (ADR 13)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=20), data=st.data())
def test_importing_three_logs_in_different_orders_matches_them(actions, data) -> None:
    """Three nodes edit while syncing partially; a fourth imports their logs in any order."""
    nodes = ["eu", "osce", "arf"]
    reps = {n: FED.replica() for n in nodes}
    clock = T0
    for origin, kind, key, variant, dt in actions:
        origin = nodes[ORIGINS.index(origin) % 3]
        clock += dt + 1
        res = edit_or_force(reps[origin], FED, origin, make_ops(kind, key, variant), t=clock)
        env = reps[origin].state.log_envelope(origin, res.seq)
        for n in data.draw(st.lists(st.sampled_from(nodes), max_size=2)):  # partial, random gossip
            reps[n].receive(env, now_ms=LATER)
    everything = [e for r in reps.values() for e in r.state.all_log()]
    for r in reps.values():  # anti-entropy: everyone gets everything
        for e in everything:
            r.receive(e, now_ms=LATER)
    digests = {digest(r) for r in reps.values()}
    assert len(digests) == 1
    logs = [reps[n].state.all_log() for n in nodes]
    for _ in range(2):
        order = data.draw(st.permutations([0, 1, 2]))
        fourth = deliver([e for i in order for e in data.draw(st.permutations(logs[i]))])
        assert digest(fourth) in digests
