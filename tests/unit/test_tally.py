"""``log import`` counting (issue 9: the summary showed ``parked = -1``): the core's typed outcomes are
counted by each change-set's last outcome, so counts are never negative and agree with the store."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core.tally import Tally
from tests.support.fed import T0, Fed, edit, put

FED = Fed()
LATER = T0 + 86_400_000


def _chain(n: int) -> list[bytes]:
    rep = FED.replica()
    for i in range(n):
        edit(rep, FED, "eu", [put("DEU/technical", position=f"rev {i}")], t=T0 + i)
    return rep.state.all_log()


CHAIN = _chain(6)


def test_parked_by_one_import_and_released_by_the_next_counts_no_negative_parked() -> None:
    rep = FED.replica()
    first = Tally()
    first.add(rep.receive(CHAIN[2], now_ms=LATER))  # seq 3 without seq 1-2: parked
    assert first.counts()["parked"] == 1 and first.counts()["accepted"] == 0
    second = Tally()  # a later import brings 1 and 2: seq 3 is released
    for env in CHAIN[:2]:
        second.add(rep.receive(env, now_ms=LATER))
    c = second.counts()
    assert c == {"accepted": 3, "duplicate": 0, "parked": 0, "quarantined": 0, "equivocation": 0}
    assert [o.seq for o in second.final.values()] == [1, 2, 3]


def test_released_within_one_import_and_garbage_counted_once_each() -> None:
    rep = FED.replica()
    t = Tally()
    for env in [CHAIN[1], b"not json", CHAIN[0], CHAIN[0], b"{}"]:
        t.add(rep.receive(env, now_ms=LATER))
    assert t.counts() == {"accepted": 2, "duplicate": 0, "parked": 0, "quarantined": 2, "equivocation": 0}
    assert [o.status for o in t.not_applied()] == ["quarantined", "quarantined"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(CHAIN) - 1), min_size=1, max_size=20), st.integers(1, 19))
def test_counts_match_the_replica_in_any_order_with_duplicates(order: list[int], split: int) -> None:
    """Any order and duplication, split over two imports: every count ≥ 0; over the run, accepted +
    parked = the distinct change-sets delivered, and they match the replica's log and parking lot."""
    rep = FED.replica()
    before: set[int] = set()
    for part in (order[:split], order[split:]):
        t = Tally()
        for i in part:
            t.add(rep.receive(CHAIN[i], now_ms=LATER))
        c = t.counts()
        assert all(v >= 0 for v in c.values())
        in_log = {s for (_, s) in rep.state.log}
        new_in_log = in_log - before
        assert c["accepted"] == len(new_in_log)
        assert c["parked"] == len({i for i in part if i + 1 not in in_log})
        assert c["accepted"] + c["parked"] + c["duplicate"] == len(set(part) | {s - 1 for s in new_in_log})
        before = in_log
