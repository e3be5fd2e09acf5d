"""Issue 11, cases 1 and 3, and the class: nothing unverified changes a node's state beyond a bounded,
expiring quarantine; no unverified input blocks signing or fills the store beyond its caps."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import changeset as csmod
from pocsync.core import jsonc
from pocsync.core import replica as rmod
from pocsync.core.envelope import CHANGESET_TYPE
from pocsync.store import Store
from pocsync.store import sqlite as sq
from tests.support.fed import T0, Fed, put


def make_store(tmp_path: Path, fed: Fed, node: str = "eu") -> Store:
    s = Store.create(tmp_path / f"{node}-{len(list(tmp_path.iterdir()))}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    return s


def sedit(store: Store, fed: Fed, ops: list[dict], t: int = T0):
    return store.edit(ops, key=fed.key(store.node_id), author=f"staff@{store.node_id}", now_ms_=t)


def unsigned(
    origin: str = "eu", seq: int = 999_999, manifest: int = 999, *, pad: str = "", keyid: str = "eu:k1"
) -> bytes:
    """The attack of case 1: a change-set envelope with a zero signature claiming a future manifest."""
    payload = jsonc.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": origin,
            "seq": seq,
            "prev": None,
            "hlc": "1763800000000-0000",
            "manifest": manifest,
            "author": "x" + pad,
            "ops": [{"op": "delete", "key": "DEU/technical"}],
        }
    )
    return jsonc.dumps(
        {
            "payloadType": CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(bytes(64)).decode()}],
        }
    )


def quarantine_bytes(store: Store) -> int:
    return store.conn.execute("SELECT coalesce(sum(length(envelope)), 0) FROM quarantine").fetchone()[0]


def parked_bytes(store: Store) -> int:
    return store.conn.execute("SELECT coalesce(sum(length(envelope)), 0) FROM parked").fetchone()[0]


@pytest.fixture()
def fed() -> Fed:
    return Fed()


# --- case 1 ---------------------------------------------------------------------------------
def test_case1_unsigned_claim_of_own_seq_does_not_freeze_signing(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed)
    out = eu.receive(unsigned(), source="mqtt", now_ms_=T0)
    assert (out.status, out.reason) == ("parked", "manifest_unknown")  # kept, bounded, for a later manifest
    assert eu.signing_blocked() is None
    assert sedit(eu, fed, [put("DEU/technical")]).status == "accepted"


def test_case1_a_flag_left_by_an_older_version_clears_itself(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed)
    eu.receive(unsigned(), source="mqtt", now_ms_=T0)
    with eu.transaction():  # what the old guard wrote for the same message
        eu.set_meta("signing_blocked", "peers hold eu seq 999999 that this store lacks (manifest_unknown)")
    assert eu.signing_blocked() is None
    assert sedit(eu, fed, [put("DEU/technical")]).status == "accepted"


def test_case1_a_verified_claim_still_blocks_and_recover_clears_unverified(tmp_path: Path, fed: Fed) -> None:
    """The guard still does its job for claims that verify: our own seq 3 signed by our key, seq 2 missing."""
    eu = make_store(tmp_path, fed)
    sedit(eu, fed, [put("DEU/technical")])
    forged = fed.forge(
        "eu", seq=3, prev="sha256:" + "0" * 64, hlc="1763800000001-0000", ops=[{"op": "delete", "key": "DEU/technical"}]
    )
    eu.receive(unsigned(), source="mqtt", now_ms_=T0)
    out = eu.receive(forged, source="pull:osce", now_ms_=T0)
    assert (out.status, out.reason) == ("parked", "gap")
    assert eu.signing_blocked() is not None
    assert eu.drop_unverified_parked("eu") == 1  # what `pocsync recover` runs after its pull
    assert [p["reason"] for p in eu.parked()] == ["gap"]


def test_case1_unverified_parking_is_bounded_per_origin_in_total_and_expires(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed)
    for i in range(rmod.MAX_UNVERIFIED_PARKED_PER_ORIGIN + 10):
        eu.receive(unsigned(seq=1000 + i), source="mqtt", now_ms_=T0)
    n = eu.conn.execute("SELECT count(*) FROM parked WHERE origin='eu'").fetchone()[0]
    assert n == rmod.MAX_UNVERIFIED_PARKED_PER_ORIGIN
    kept = [r[0] for r in eu.conn.execute("SELECT seq FROM parked ORDER BY seq")]
    assert kept[-1] == 1000 + rmod.MAX_UNVERIFIED_PARKED_PER_ORIGIN + 9  # the newest stay
    for i in range(rmod.MAX_UNVERIFIED_PARKED + 20):  # claimed origins that do not even exist
        eu.receive(unsigned(origin=f"n{i % 40}", seq=5 + i), source="mqtt", now_ms_=T0)
    assert eu.conn.execute("SELECT count(*) FROM parked").fetchone()[0] <= rmod.MAX_UNVERIFIED_PARKED
    with eu.transaction():
        eu.conn.execute("UPDATE parked SET parked_at='2000-01-01T00:00:00.000000Z'")
    eu.receive(unsigned(seq=77), source="mqtt", now_ms_=T0)
    assert eu.conn.execute("SELECT count(*) FROM parked").fetchone()[0] == 1  # the old ones expired


def test_case1_memory_state_bounds_unverified_parking_too(fed: Fed) -> None:
    rep = fed.replica()
    for i in range(rmod.MAX_UNVERIFIED_PARKED_PER_ORIGIN + 5):
        rep.receive(unsigned(seq=10 + i), now_ms=T0)
    assert len(rep.state.parked) == rmod.MAX_UNVERIFIED_PARKED_PER_ORIGIN  # type: ignore[attr-defined]


# --- case 3 ---------------------------------------------------------------------------------
def test_case3_oversize_blobs_leave_a_small_hashed_record_not_the_body(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed)
    size_before = quarantine_bytes(eu)
    big = [unsigned(pad=str(i) + "x" * (eu.limits.max_envelope_bytes + 10)) for i in range(60)]
    for blob in big:
        assert eu.receive(blob, source="mqtt", now_ms_=T0).reason == "oversize"
    rows = eu.quarantined()
    assert len(rows) == 60 and all(r["size"] > eu.limits.max_envelope_bytes for r in rows)
    assert quarantine_bytes(eu) - size_before <= 60 * rmod.QUARANTINE_HEAD_BYTES
    eu.receive(big[0], source="mqtt", now_ms_=T0)  # the same item again: counted, not stored again
    assert len(eu.quarantined()) == 60
    assert eu.conn.execute("SELECT max(count) FROM quarantine").fetchone()[0] == 2


def test_case3_quarantine_rows_are_capped_per_source_and_expire(
    tmp_path: Path, fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sq, "QUARANTINE_MAX_ROWS_PER_SOURCE", 20)
    eu = make_store(tmp_path, fed)
    for i in range(50):
        eu.receive(b"not json %d" % i, source="mqtt", now_ms_=T0)
    eu.receive(b"not json either", source="pull:osce", now_ms_=T0)
    by_source = dict(eu.conn.execute("SELECT source, count(*) FROM quarantine GROUP BY source").fetchall())
    assert by_source == {"mqtt": 20, "pull:osce": 1}
    with eu.transaction():
        eu.conn.execute(
            "UPDATE quarantine SET received_at='2000-01-01T00:00:00.000000Z', last_at='2000-01-01T00:00:00.000000Z'"
        )
    eu.receive(b"fresh junk", source="mqtt", now_ms_=T0)
    assert len(eu.quarantined()) == 1


def test_case3_manifest_dependent_items_are_kept_whole_within_a_byte_budget(
    tmp_path: Path, fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sq, "QUARANTINE_FULL_BYTES_PER_SOURCE", 4000)
    eu = make_store(tmp_path, fed)
    # signed by a key the manifest does not list (yet): kept whole so a new manifest can accept it
    items = [unsigned(origin="osce", seq=i, manifest=1, keyid="osce:k9", pad="y" * 900) for i in range(1, 8)]
    for blob in items:
        assert eu.receive(blob, source="mqtt", now_ms_=T0).reason == "unknown_key"
    whole = eu.conn.execute("SELECT count(*) FROM quarantine WHERE size = length(envelope)").fetchone()[0]
    assert 1 <= whole < len(items) and quarantine_bytes(eu) <= 4000 + len(items) * rmod.QUARANTINE_HEAD_BYTES


# --- the class --------------------------------------------------------------------------------
junk_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
claim = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["pocsync.changeset/v1", "x"]),
        "origin": st.sampled_from(["eu", "osce", "zz", ""]),
        "seq": st.integers(-5, 2**53),
        "prev": st.none(),
        "hlc": st.sampled_from(["1763800000000-0000", "bad"]),
        "manifest": st.integers(0, 2**53),
        "author": st.text(max_size=5),
        "ops": junk_json,
    }
)


def _envelope(payload: bytes, keyid: str, sig: bytes) -> bytes:
    return json.dumps(
        {
            "payloadType": CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}],
        }
    ).encode()


unverified_input = st.one_of(
    st.binary(max_size=300),
    junk_json.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda c, k, s: _envelope(json.dumps(c).encode(), k, s),
        claim,
        st.sampled_from(["eu:k1", "osce:k1", "eu:k9", "x"]),
        st.binary(min_size=64, max_size=64),
    ),
    st.builds(
        lambda c, n: _envelope(json.dumps(c).encode() + b" " * n, "eu:k1", bytes(64)),
        claim,
        st.sampled_from([0, 300_000]),
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batch=st.lists(unverified_input, min_size=1, max_size=12))
def test_class_no_unverified_input_blocks_signing_or_exceeds_the_caps(
    tmp_path_factory: pytest.TempPathFactory, batch: list[bytes]
) -> None:
    fed = _FED
    eu = make_store(tmp_path_factory.mktemp("prop"), fed)
    before = eu.digest()
    for blob in batch:
        out = eu.receive(blob, source="mqtt", now_ms_=T0)
        assert out.status in ("parked", "quarantined")
    assert eu.digest() == before and eu.heads() == {}
    assert eu.signing_blocked() is None
    assert parked_bytes(eu) <= rmod.MAX_UNVERIFIED_PARKED_BYTES
    assert eu.conn.execute("SELECT count(*) FROM parked").fetchone()[0] <= rmod.MAX_UNVERIFIED_PARKED
    assert quarantine_bytes(eu) <= sq.QUARANTINE_FULL_BYTES_PER_SOURCE + len(batch) * rmod.QUARANTINE_HEAD_BYTES
    assert sedit(eu, fed, [put("DEU/technical")]).status == "accepted"
    eu.close()


_FED = Fed()


def test_peek_identity_of_unsigned_claim_is_what_mqtt_compares() -> None:
    assert csmod.peek_identity(unsigned(origin="osce"), max_bytes=1 << 20)[1] == "osce"


# --- a member's signed but unproven claim about our chain (found while testing the class) -----------
def test_announced_own_seq_blocks_for_a_bounded_time_then_the_announcer_is_disregarded(
    tmp_path: Path, fed: Fed
) -> None:
    eu = make_store(tmp_path, fed)
    sedit(eu, fed, [put("DEU/technical")])
    eu.note_announced_own(50, "osce")
    assert "osce holds eu seq 50" in (eu.signing_blocked() or "")
    eu.note_announced_own(51, "osce")  # a higher claim does not extend the window
    with eu.transaction():
        eu.set_meta("announced_own_at", "2000-01-01T00:00:00.000000Z")
    assert eu.signing_blocked() is None  # unproven in time
    eu.note_announced_own(60, "osce")  # osce is not believed again ...
    assert eu.signing_blocked() is None
    eu.note_announced_own(60, "arf")  # ... another peer is, and `recover` forgets its claim
    assert eu.signing_blocked() is not None
    eu.forget_announced_own()
    assert eu.signing_blocked() is None
    assert sedit(eu, fed, [put("FRA/technical")], t=T0 + 1).status == "accepted"


def test_peers_confirming_the_same_own_head_in_turn_write_once_per_grain(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed)
    out = sedit(eu, fed, [put("DEU/technical")])
    t = 1_900_000_000_000
    eu.note_announced_own(out.seq, "osce", signed_ms=t)
    assert eu.own_head_confirmation() == (t, "osce", out.seq)
    before = eu.conn.total_changes
    eu.note_announced_own(out.seq, "arf", signed_ms=t + 100)  # another peer, same seq, within the grain
    eu.note_announced_own(out.seq, "un", signed_ms=t + 200)
    assert eu.conn.total_changes == before, "no write (and no disk sync) for each peer's head vector"
    eu.note_announced_own(out.seq, "arf", signed_ms=t + eu.CONFIRMATION_GRAIN_MS)  # the next grain: recorded
    assert eu.own_head_confirmation() == (t + eu.CONFIRMATION_GRAIN_MS, "arf", out.seq)
    eu.note_announced_own(out.seq + 5, "un", signed_ms=t + eu.CONFIRMATION_GRAIN_MS + 1)  # above our head: recorded
    assert "un holds eu seq" in (eu.signing_blocked() or "")
