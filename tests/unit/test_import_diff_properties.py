"""Properties of the import diff (pocsync.directory.sources.plan): idempotent, order-free, duplicates refused,
deletes only of what this source last put."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.directory import adapters, sources
from pocsync.directory.adapters import Record

MAPPING = adapters.load("json").default_mapping
KEYS = [("AUT", "technical"), ("AUT", "diplomatic"), ("DEU", "technical"), ("FRA", "diplomatic")]


def entry(i: int, org: int) -> dict:
    state, kind = KEYS[i]
    return {
        "state": state,
        "kind": kind,
        "organisation": f"Example organisation {org} (fictional)",
        "emails": [f"poc{org}@example.org"],
    }


records_st = st.lists(st.tuples(st.integers(0, len(KEYS) - 1), st.integers(0, 2)), max_size=6)
own_st = st.dictionaries(st.integers(0, len(KEYS) - 1), st.tuples(st.integers(0, 2), st.sampled_from(["c1", "c2"])))
tracked_st = st.dictionaries(st.integers(0, len(KEYS) - 1), st.sampled_from(["c1", "c2", "c3"]))


def key(i: int) -> str:
    return "/".join(KEYS[i])


def make(records, own, tracked):
    recs = [Record(ref=f"r{n}", raw=entry(i, org)) for n, (i, org) in enumerate(records)]
    own_d = {key(i): {"entry": entry(i, org), "cs_id": cs} for i, (org, cs) in own.items()}
    tracked_d = {key(i): cs for i, cs in tracked.items()}
    return recs, own_d, tracked_d


def plan(recs, own, tracked):
    return sources.plan(
        recs,
        MAPPING,
        source="s",
        adapter="json",
        own=own,
        tracked_keys=tracked,
        sync_deletes=True,
        in_scope=lambda s: True,
        today_iso="2026-01-01",
    )


def apply(p: sources.Plan, own: dict, tracked: dict) -> None:
    for put in p.puts:
        own[put["key"]] = {"entry": put["entry"], "cs_id": "new"}
        tracked[put["key"]] = "new"
    for d in p.deletes:
        own.pop(d["key"])
        tracked.pop(d["key"])


@settings(max_examples=200, deadline=None)
@given(records=records_st, own=own_st, tracked=tracked_st, order=st.randoms(use_true_random=False))
def test_diff_is_idempotent_order_free_and_careful_with_deletes(records, own, tracked, order) -> None:
    recs, own_d, tracked_d = make(records, own, tracked)
    p = plan(recs, dict(own_d), dict(tracked_d))
    counts = {}
    for i, _ in records:
        counts[key(i)] = counts.get(key(i), 0) + 1
    dup = {k for k, n in counts.items() if n > 1}
    # duplicates are invalid in every record and never published, nor deleted
    assert {x.ref for x in p.invalid} == {f"r{n}" for n, (i, _) in enumerate(records) if key(i) in dup}
    assert not dup & {x["key"] for x in p.puts} and not dup & {d["key"] for d in p.deletes}
    # a put only where the source differs from this node's own version
    for put in p.puts:
        assert own_d.get(put["key"], {}).get("entry") != put["entry"]
    # a delete only of a key this source put last and no longer lists
    for d in p.deletes:
        assert d["key"] not in counts and tracked_d.get(d["key"]) == own_d[d["key"]]["cs_id"]
    # the same records in another order give the same ops
    shuffled = list(recs)
    order.shuffle(shuffled)
    q = plan(shuffled, dict(own_d), dict(tracked_d))
    assert sorted((x["key"], str(x["entry"])) for x in q.puts) == sorted((x["key"], str(x["entry"])) for x in p.puts)
    assert q.deletes == p.deletes
    # applying the plan, then importing the same source again: nothing to publish
    apply(p, own_d, tracked_d)
    again = plan(recs, own_d, tracked_d)
    assert again.puts == [] and again.deletes == []
