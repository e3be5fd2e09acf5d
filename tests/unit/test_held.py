"""Held contact changes (issue 16 part 1, PROTOCOL.md §16, ADRs 28-30): each rule, then orders and duplicates.

One in-memory replica holds every origin's log (it signs for each node with that node's key), so the
origin's own checks run against everything; the property tests deliver the same change-sets to fresh
replicas in any order, with duplicates, and compare digests and held states.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import held
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import EntryError
from pocsync.store import Store
from tests.support.fed import T0, Fed, edit, edit_unchecked, put

FED = Fed()
ALICE = Ed25519PrivateKey.generate()  # a staff key of eu, listed in the manifest
BOB = Ed25519PrivateKey.generate()  # staff@eu's own staff key (the proposer's)
HOLD_S = 60
POLICY = {
    "hold_seconds": HOLD_S,
    "staff_keys": {
        "eu": [
            {"name": "alice", "public": ed25519_public_b64(ALICE)},
            {"name": "staff@eu", "public": ed25519_public_b64(BOB)},
        ]
    },
}
M_ON = FED.signed(
    mf.set_policy(mf.set_features(mf.next_version(FED.manifest.payload), ["held-changes"]), "held-changes", POLICY)
)
KEY = "DEU/technical"
NEW = {"emails": ["cert-deu-new@example.org"]}


def world(manifest: mf.Manifest = M_ON) -> Replica:
    return Replica(MemoryState(), manifest)


def view(rep: Replica, key: str = KEY) -> dict[str, Any] | None:
    w = rep.state.winner(key)
    return w.entry if w is not None else None


def pending(rep: Replica, key: str = KEY) -> list[held.Held]:
    return rep.state.held_.get(key, [])  # type: ignore[attr-defined]


def hold(kind: str, ref: str, key: str = KEY, **extra: Any) -> dict[str, Any]:
    return {"op": kind, "key": key, "put": ref, **extra}


def staff(key: Ed25519PrivateKey, name: str, ref: str, origin: str = "eu") -> dict[str, str]:
    return {"origin": origin, "name": name, "sig": base64.b64encode(key.sign(held.staff_message(KEY, ref))).decode()}


def held_change(t: int = T0) -> tuple[Replica, str]:
    """eu nominates DEU/technical, then changes its mailbox: (the world, the held put's ref)."""
    rep = world()
    edit(rep, FED, "eu", [put(KEY)], t=t)
    out = edit(rep, FED, "eu", [put(KEY, **NEW)], t=t + 1000)
    return rep, f"{out.cs_id}#0"


def refused_reason(rep: Replica, node: str, ops: list[dict[str, Any]], t: int) -> str:
    with pytest.raises(EntryError) as exc:
        edit(rep, FED, node, ops, t=t)
    return exc.value.reason


# --- what is held ------------------------------------------------------------------------------
def test_first_nomination_and_non_contact_changes_take_effect_at_once() -> None:
    rep = world()
    edit(rep, FED, "eu", [put(KEY)])
    assert view(rep)["emails"] == ["cert-deu@example.org"] and not pending(rep)
    edit(rep, FED, "osce", [put(KEY, notes="Office hours changed (fictional)")], t=T0 + 10)
    assert view(rep)["notes"] == "Office hours changed (fictional)" and not pending(rep)


@pytest.mark.parametrize(
    "change",
    [
        {"emails": ["x@example.org"]},
        {"phones": ["+493099999999"]},
        {"secure_channels": [{"type": "openpgp", "fingerprint": "A" * 40}]},
        {"public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n..."},
        {"person": "B. Example"},
    ],
)
def test_a_contact_or_person_change_is_held_whichever_origin(change: dict[str, Any]) -> None:
    key = "DEU/diplomatic" if "person" in change else KEY
    rep = world()
    edit(rep, FED, "eu", [put(key)])
    edit(rep, FED, "osce", [put(key, **change)], t=T0 + 10)  # another origin than the first
    assert view(rep, key) == put(key)["entry"] | {"holder_epoch": view(rep, key)["holder_epoch"]}
    [h] = pending(rep, key)
    assert h.status == "pending" and h.put.origin == "osce" and h.notice is None and h.takes_effect_ms is None
    assert set(h.summary()["fields"]) == set(change)
    assert ("held", key, h.put.ref) in rep.state.digest_view()


def test_withdrawal_is_not_held_but_a_later_changed_put_is() -> None:
    rep = world()
    edit(rep, FED, "eu", [put(KEY)])
    edit(rep, FED, "eu", [{"op": "withdraw", "key": KEY}], t=T0 + 10)
    assert view(rep) is None and not pending(rep)
    edit(rep, FED, "osce", [put(KEY, **NEW)], t=T0 + 20)  # judged against the last winning put (withdrawn)
    assert view(rep) is None and len(pending(rep)) == 1
    rep2 = world()
    edit(rep2, FED, "eu", [put(KEY)])
    edit(rep2, FED, "eu", [{"op": "delete", "key": KEY}], t=T0 + 10)
    edit(rep2, FED, "eu", [put(KEY)], t=T0 + 20)  # same channels as before the delete: not held
    assert view(rep2) is not None and not pending(rep2)


def test_puts_before_policy_since_are_never_held() -> None:
    m = FED.signed(
        mf.set_policy(
            mf.set_features(mf.next_version(FED.manifest.payload), ["held-changes"]),
            "held-changes",
            {"hold_seconds": 60, "since": f"{T0 + 5000:013d}-0000"},
        )
    )
    rep = world(m)
    edit(rep, FED, "eu", [put(KEY)])
    edit(rep, FED, "eu", [put(KEY, **NEW)], t=T0 + 1000)
    assert view(rep)["emails"] == NEW["emails"] and not pending(rep)
    edit(rep, FED, "eu", [put(KEY)], t=T0 + 6000)
    assert view(rep)["emails"] == NEW["emails"] and len(pending(rep)) == 1


def test_feature_off_nothing_is_held_and_hold_ops_are_refused() -> None:
    rep = world(FED.manifest)
    edit(rep, FED, "eu", [put(KEY)])
    out = edit(rep, FED, "eu", [put(KEY, **NEW)], t=T0 + 1000)
    assert view(rep)["emails"] == NEW["emails"]
    assert refused_reason(rep, "un", [hold("notice", f"{out.cs_id}#0")], T0 + 2000) == "feature_off"


# --- notice, hold, release ------------------------------------------------------------------------
def test_release_counts_after_notice_plus_hold_and_the_put_ranks_at_the_release() -> None:
    rep, ref = held_change()
    assert refused_reason(rep, "eu", [hold("notice", ref)], T0 + 2000) == "own_notice"
    assert refused_reason(rep, "un", [hold("release", ref)], T0 + 2000) == "release_early"  # no notice yet
    edit(rep, FED, "un", [hold("notice", ref)], t=T0 + 2000)
    [h] = pending(rep)
    assert h.notice is not None and h.takes_effect_ms == T0 + 2000 + HOLD_S * 1000
    assert ("held-notice", KEY, h.notice.ref) in rep.state.digest_view()
    assert refused_reason(rep, "un", [hold("release", ref)], T0 + 2000 + HOLD_S * 1000 - 1) == "release_early"
    assert refused_reason(rep, "eu", [hold("release", ref)], T0 + 30_000) == "release_early"
    # a hostile origin signs the early release anyway: peers accept the op, it has no effect
    edit_unchecked(rep, FED, "eu", [hold("release", ref)], t=T0 + 30_000)
    assert view(rep)["emails"] == ["cert-deu@example.org"] and len(pending(rep)) == 1
    out = edit(rep, FED, "eu", [hold("release", ref)], t=T0 + 2000 + HOLD_S * 1000)  # anyone may release after
    assert view(rep)["emails"] == NEW["emails"] and not pending(rep)
    assert rep.state.winner(KEY).hlc == f"{T0 + 2000 + HOLD_S * 1000:013d}-0000" and rep.state.winner(KEY).ref == ref
    assert out.cs_id is not None


def test_a_notice_by_the_origin_itself_never_starts_the_hold() -> None:
    rep, ref = held_change()
    edit_unchecked(rep, FED, "eu", [hold("notice", ref)], t=T0 + 2000)
    edit_unchecked(rep, FED, "eu", [hold("release", ref)], t=T0 + 10 * HOLD_S * 1000)
    assert view(rep)["emails"] == ["cert-deu@example.org"] and pending(rep)[0].notice is None


# --- approvals ----------------------------------------------------------------------------------
def test_approval_by_another_node_takes_effect_at_once() -> None:
    rep, ref = held_change()
    edit(rep, FED, "osce", [hold("approve", ref)], t=T0 + 2000)
    assert view(rep)["emails"] == NEW["emails"] and not pending(rep)


def test_self_approval_is_refused_and_typed_author_names_prove_nothing() -> None:
    rep, ref = held_change()
    assert refused_reason(rep, "eu", [hold("approve", ref)], T0 + 2000) == "self_approval"
    with pytest.raises(EntryError) as exc:  # another typed name at the same node is no second person
        rep.edit([hold("approve", ref)], me="eu", key=FED.key("eu"), author="bob@eu (another person)", now_ms=T0 + 2000)
    assert exc.value.reason == "self_approval"
    edit_unchecked(rep, FED, "eu", [hold("approve", ref)], t=T0 + 2000)  # forced: accepted, no effect
    assert view(rep)["emails"] == ["cert-deu@example.org"] and len(pending(rep)) == 1


def test_a_listed_staff_key_of_another_person_approves_at_the_origin() -> None:
    rep, ref = held_change()
    # the proposer's own staff key (named like the put's author) is not a second person
    assert (
        refused_reason(rep, "eu", [hold("approve", ref, staff=staff(BOB, "staff@eu", ref))], T0 + 2000)
        == "self_approval"
    )
    # a signature by an unlisted key under a listed name is refused by every peer
    assert (
        refused_reason(
            rep, "eu", [hold("approve", ref, staff=staff(Ed25519PrivateKey.generate(), "alice", ref))], T0 + 2000
        )
        == "bad_staff_signature"
    )
    assert (
        refused_reason(rep, "eu", [hold("approve", ref, staff=staff(ALICE, "alice", ref, origin="osce"))], T0 + 2000)
        == "bad_staff_signature"
    )
    edit(rep, FED, "eu", [hold("approve", ref, staff=staff(ALICE, "alice", ref))], t=T0 + 2000)
    assert view(rep)["emails"] == NEW["emails"] and not pending(rep)


# --- objections -------------------------------------------------------------------------------------
def test_objection_cancels_and_only_a_un_approval_overrides_it() -> None:
    rep, ref = held_change()
    edit(rep, FED, "un", [hold("notice", ref)], t=T0 + 2000)
    edit(rep, FED, "un", [hold("object", ref)], t=T0 + 3000)
    [h] = pending(rep)
    assert h.status == "objected" and h.takes_effect_ms is None
    assert rep.state.digest_view().count(("held-objected", KEY, h.objection.ref)) == 1
    assert ("held", KEY, ref) not in rep.state.digest_view()
    late = T0 + 2000 + HOLD_S * 1000
    assert refused_reason(rep, "un", [hold("release", ref)], late) == "objected"
    assert refused_reason(rep, "osce", [hold("approve", ref)], late) == "objected"
    edit_unchecked(rep, FED, "un", [hold("release", ref)], t=late)
    edit_unchecked(rep, FED, "osce", [hold("approve", ref)], t=late + 1)
    assert view(rep)["emails"] == ["cert-deu@example.org"]
    edit(rep, FED, "un", [hold("approve", ref)], t=late + 2)
    assert view(rep)["emails"] == NEW["emails"] and not pending(rep)


def test_a_later_op_of_the_origin_supersedes_its_pending_change() -> None:
    rep, ref = held_change()
    edit(rep, FED, "un", [hold("notice", ref)], t=T0 + 2000)
    edit(rep, FED, "eu", [put(KEY, emails=["cert-deu-other@example.org"])], t=T0 + 3000)
    [h] = pending(rep)
    assert h.put.ref != ref and h.notice is None  # the new change needs its own notice
    edit_unchecked(rep, FED, "un", [hold("release", ref)], t=T0 + 2000 + HOLD_S * 1000)
    assert view(rep)["emails"] == ["cert-deu@example.org"]
    assert refused_reason(rep, "un", [hold("release", ref)], T0 + 2000 + HOLD_S * 1000 + 1) == "not_pending"


def test_bad_hold_ops_are_refused_by_every_peer() -> None:
    rep, ref = held_change()
    for op, reason in [
        (hold("notice", "sha256:00#0"), "bad_hold"),
        (hold("notice", ref, extra=1), "bad_hold"),
        (hold("notice", ref, key="DEU"), "bad_key"),
        (hold("notice", ref, key="JPN/technical"), "out_of_scope"),
    ]:
        assert refused_reason(rep, "osce", [op], T0 + 2000) == reason


def test_sqlite_store_runs_the_same_rules(tmp_path) -> None:
    rep, ref = held_change()
    edit(rep, FED, "un", [hold("notice", ref)], t=T0 + 2000)
    edit(rep, FED, "un", [hold("release", ref)], t=T0 + 2000 + HOLD_S * 1000)
    edit(rep, FED, "eu", [put(KEY, phones=["+493011111111"])], t=T0 + 2000 + HOLD_S * 1000 + 5)
    with Store.create(tmp_path / "s.sqlite", node_id="un") as s:
        s.install_manifest(FED.manifest, now_ms_=T0)
        s.install_manifest(M_ON, now_ms_=T0)
        for env in reversed(rep.state.all_log()):
            s.receive(env, now_ms_=T0 + 10 * HOLD_S * 1000)
        assert s.digest() == rep.state.digest()
        assert s.entry(KEY)["entry"]["emails"] == NEW["emails"]
        rows = s.conn.execute("SELECT status, put_ref FROM held_puts").fetchall()
        assert [r["status"] for r in rows] == ["pending"]


# --- orders and duplicates -------------------------------------------------------------------------
action = st.tuples(
    st.sampled_from(["eu", "osce", "un"]),
    st.sampled_from(["put", "put", "same", "withdraw", "delete", "notice", "object", "approve", "release", "staff"]),
    st.integers(0, 2),
    st.sampled_from([0, 1, 500, 20_000, 61_000, 90_000]),
)


def scenario(actions: list[tuple[str, str, int, int]]) -> list[bytes]:
    """Sign every action as its node would (hostile: no origin checks), referencing earlier puts."""
    rep = world()
    puts: list[str] = []
    t = T0
    for node, kind, variant, dt in actions:
        t += dt
        if kind in ("put", "same"):
            ops = [put(KEY, emails=[f"cert-{variant if kind == 'put' else 0}@example.org"], notes=str(dt))]
        elif kind in ("withdraw", "delete"):
            ops = [{"op": kind, "key": KEY}]
        elif not puts:
            continue
        else:
            ref = puts[-1 - variant % len(puts)]
            ops = [hold("approve", ref, staff=staff(ALICE, "alice", ref))] if kind == "staff" else [hold(kind, ref)]
        out = edit_unchecked(rep, FED, "eu" if kind == "staff" else node, ops, t=t)
        if ops[0]["op"] == "put":
            puts.append(f"{out.cs_id}#0")
    return rep.state.all_log()


def replay(envs: list[bytes], now: int) -> Replica:
    rep = world()
    for e in envs:
        rep.receive(e, now_ms=now)
    return rep


def held_state(rep: Replica) -> list[dict[str, Any]]:
    return [h.summary() for rows in rep.state.held_.values() for h in rows]  # type: ignore[attr-defined]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=14), data=st.data())
def test_any_order_and_duplicates_give_the_same_view_and_held_state(actions, data) -> None:
    envs = scenario(actions)
    if not envs:
        return
    now = T0 + 10**9
    ref = replay(envs, now)
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=4))))
    other = replay(order, now)
    assert other.state.digest() == ref.state.digest()
    assert held_state(other) == held_state(ref)
    assert {k: a.ref for k, a in other.state.winners.items()} == {k: a.ref for k, a in ref.state.winners.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=10))
def test_a_held_change_never_shows_before_its_release_or_approval(actions) -> None:
    """Invariant: the winning put is either unheld when judged, or was made effective by a counting op."""
    envs = scenario(actions)
    rep = replay(envs, T0 + 10**9)
    w = rep.state.winner(KEY)
    hist = rep.state.history(KEY)
    if w is None:
        return
    own = next(a for a in hist if a.ref == w.ref)
    if own.hlc != w.hlc:  # it was held: some counting release or approval names it, at w.hlc
        ops = [h for h in rep.state.holds(KEY) if h.entry["put"] == w.ref and h.hlc == w.hlc]
        assert ops and ops[0].op in ("release", "approve")
        assert ops[0].op != "approve" or held.approver_counts(ops[0], own)


def test_an_import_sees_its_own_held_put_and_does_not_put_it_again(tmp_path) -> None:
    """sources.own_state counts a held put as this node's last word: a source re-reading the same record every
    interval must not supersede its own held change (restarting the notice and the hold each time)."""
    from pocsync.directory import sources

    with Store.create(tmp_path / "s.sqlite", node_id="eu") as s:
        s.install_manifest(FED.manifest, now_ms_=T0)
        s.install_manifest(M_ON, now_ms_=T0)
        s.edit([put(KEY)], key=FED.key("eu"), author="staff@eu", now_ms_=T0)
        s.edit([put(KEY, **NEW)], key=FED.key("eu"), author="staff@eu", now_ms_=T0 + 1000)
        assert s.entry(KEY)["entry"]["emails"] == ["cert-deu@example.org"]  # held
        assert sources.own_state(s)[KEY]["entry"]["emails"] == NEW["emails"]
        assert [r["status"] for r in s.held_changes(KEY)] == ["pending"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=10))
def test_switching_the_feature_off_gives_the_merge_without_the_guard(actions) -> None:
    envs = scenario(actions)
    if not envs:
        return
    on = replay(envs, T0 + 10**9)
    off = Replica(MemoryState(), FED.manifest)
    for e in envs:
        off.receive(e, now_ms=T0 + 10**9)
    m_off = FED.signed(mf.set_features(mf.next_version(M_ON.payload), []))
    on.reevaluate(now_ms=T0 + 10**9, manifest=m_off)
    assert on.state.digest() == off.state.digest() and not on.state.held_  # type: ignore[attr-defined]


def test_held_section_of_sync_toml(tmp_path) -> None:
    from pocsync.errors import ConfigError
    from pocsync.folder import config

    base = '[node]\nid = "un"\n'
    f = tmp_path / "sync.toml"
    f.write_text(base + '[held]\nnotify = "yes"\ninterval_seconds = 2\n')
    cfg = config.load(f)
    assert cfg.held.notify == "yes" and cfg.held.interval_seconds == 2
    for bad in ('notify = "maybe"', "interval_seconds = 0", "object_requests_per_minute = 0", "notify = true"):
        f.write_text(base + "[held]\n" + bad + "\n")
        with pytest.raises(ConfigError):
            config.load(f)
