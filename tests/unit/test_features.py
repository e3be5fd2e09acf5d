"""Feature gating and op kinds (PROTOCOL.md §8.2, §8.3, ADR 16).

A toy op kind (`note`, feature `toy-note`) is refused while the manifest does not list its feature,
takes effect once it does, and every node reaches the same digest whatever the order and duplication
of delivery.  A manifest naming a feature the software lacks is refused at install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import manifest as mf
from pocsync.core import opkinds
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import ManifestError
from pocsync.store import Store
from tests.support.data import entry
from tests.support.fed import T0, Fed

FED = Fed()
M_OFF = FED.manifest
M_ON = FED.signed(mf.set_features(mf.next_version(M_OFF.payload), ["toy-note"]))
M_ON_SHORT = FED.signed(mf.set_policy(mf.next_version(M_ON.payload), "toy-note", {"max_length": 10}))
LATER = T0 + 86_400_000

note_action = st.tuples(
    st.sampled_from(["eu", "osce", "un", "arf"]),
    st.sampled_from(["note", "note", "put", "delete", "badnote"]),
    st.sampled_from(["DEU", "FRA", "JPN", "UKR"]),
    st.integers(0, 3),
    st.integers(0, 500),
)


def history(actions: list[tuple[str, str, str, int, int]]) -> list[bytes]:
    heads: dict[str, tuple[int, str | None]] = {}
    clock = T0
    out = []
    for origin, kind, state, variant, dt in actions:
        clock += dt
        if kind == "note":
            op: dict[str, Any] = {"op": "note", "key": state, "text": f"note {variant} by {origin}"}
        elif kind == "badnote":
            op = {"op": "note", "key": state, "text": "x" * (281 + variant)}
        elif kind == "put":
            op = {
                "op": "put",
                "key": f"{state}/technical",
                "entry": entry(f"{state}/technical", notes=str(variant), full=True),
            }
        else:
            op = {"op": "delete", "key": f"{state}/technical"}
        seq, prev = heads.get(origin, (0, None))
        hlc = f"{clock:013d}-0000"
        env = FED.forge(origin, seq=seq + 1, prev=prev, hlc=hlc, ops=[op])
        from pocsync.core.changeset import changeset_id
        from pocsync.core.envelope import parse

        heads[origin] = (seq + 1, changeset_id(parse(env, max_bytes=1 << 20).payload))
        out.append(env)
    return out


def run(manifest: mf.Manifest, envs: list[bytes]) -> Replica:
    rep = Replica(MemoryState(), manifest)
    for e in envs:
        rep.receive(e, now_ms=LATER)
    return rep


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(note_action, min_size=1, max_size=12), data=st.data())
def test_toy_op_refused_before_the_flag_applied_after_same_digest_in_any_order(actions, data) -> None:
    envs = history(actions)
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=4))))
    for manifest in (M_OFF, M_ON, M_ON_SHORT):
        ref, other = run(manifest, envs), run(manifest, order)
        assert other.state.digest() == ref.state.digest()
        assert other.state.refusals == ref.state.refusals
    off, on = run(M_OFF, envs), run(M_ON, envs)
    notes = [a for a in actions if a[1] in ("note", "badnote")]
    # before the flag: every note refused feature_off, no note line in the digest
    assert not off.state.records
    assert sum(r.reason == "feature_off" for r in off.state.refusals.values()) == len(notes)
    # after: every in-scope, well-formed note takes effect; the greatest (hlc, origin, id, index) wins per State
    assert not any(r.reason == "feature_off" for r in on.state.refusals.values())
    good = [a for a in actions if a[1] == "note" and FED.manifest.nodes[a[0]].covers(a[2], 1)]
    assert {k for (_ns, k) in on.state.records} == {a[2] for a in good}
    # switching the manifest re-derives: receive under v1, install v2 -> same as receiving under v2
    switched = run(M_OFF, order)
    switched.reevaluate(now_ms=LATER, manifest=M_ON)
    assert switched.state.digest() == on.state.digest()
    # the entry part of the view does not depend on the flag
    assert sorted(off.state.view_refs()) == sorted(on.state.view_refs())


def test_policy_of_a_feature_changes_its_effect() -> None:
    envs = [
        FED.forge(
            "eu",
            seq=1,
            prev=None,
            hlc=f"{T0:013d}-0000",
            ops=[
                {"op": "note", "key": "DEU", "text": "ten chars!"},
                {"op": "note", "key": "FRA", "text": "eleven char"},
            ],
        )
    ]
    on, short = run(M_ON, envs), run(M_ON_SHORT, envs)  # max_length 280 (default) and 10 (policy)
    assert set(on.state.records) == {("note", "DEU"), ("note", "FRA")}
    assert set(short.state.records) == {("note", "DEU")}
    assert [(r.key, r.reason) for r in short.state.refusals.values()] == [("FRA", "bad_note")]


def test_manifest_naming_an_unknown_feature_is_refused_at_install(tmp_path: Path) -> None:
    fed = Fed()
    s = Store.create(tmp_path / "eu.sqlite", node_id="eu")
    s.install_manifest(fed.manifest, now_ms_=T0)
    v2 = fed.signed(mf.set_features(mf.next_version(fed.manifest.payload), ["future-feature", "toy-note"]))
    with pytest.raises(ManifestError) as err:
        s.install_manifest(v2, now_ms_=T0)
    assert err.value.reason == "unsupported_feature" and "future-feature" in err.value.message
    assert s.manifest().version == 1  # nothing installed
    ok = fed.signed(mf.set_features(mf.next_version(fed.manifest.payload), ["toy-note"]))
    s.install_manifest(ok, now_ms_=T0)
    assert s.manifest().features == {"toy-note"}


def test_sqlite_store_applies_toy_ops_like_memory(tmp_path: Path) -> None:
    envs = history(
        [
            ("eu", "note", "DEU", 0, 0),
            ("osce", "note", "DEU", 1, 5),
            ("arf", "note", "JPN", 2, 5),
            ("eu", "put", "DEU", 0, 5),
            ("osce", "badnote", "UKR", 0, 5),
        ]
    )
    s = Store.create(tmp_path / "un.sqlite", node_id="un")
    s.install_manifest(FED.manifest, now_ms_=T0)
    for e in reversed(envs):
        s.receive(e, now_ms_=LATER)
    assert s.digest() == run(M_OFF, envs).state.digest()
    s.install_manifest(M_ON, now_ms_=T0)
    assert s.digest() == run(M_ON, envs).state.digest() != run(M_OFF, envs).state.digest()
    assert {r["reason"] for r in s.refused()} == {"bad_note"}


def test_features_and_policy_are_validated() -> None:
    with pytest.raises(ManifestError):
        mf.set_features(M_OFF.payload, ["Bad Name"])
    with pytest.raises(ManifestError):  # policy for a feature the manifest does not list
        mf.set_policy(M_OFF.payload, "toy-note", {"max_length": 5})
    with pytest.raises(ManifestError):
        mf.set_policy(M_ON.payload, "toy-note", {"max_length": 0})
    p = mf.set_features(M_ON_SHORT.payload, [])  # dropping the feature drops its policy
    assert "features" not in p and "policy" not in p
    assert opkinds.unsupported(frozenset({"toy-note", "held-changes", "not-built-yet"})) == ["not-built-yet"]
