"""ADR 42: receipts of peers' change-sets commit with synchronous=NORMAL, everything else with FULL.

Real SQLite files.  ``PRAGMA synchronous`` reads 1 (NORMAL) or 2 (FULL); it can only be set outside a
transaction, so the statements SQLite runs (``set_trace_callback``) show where it is set.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pocsync.core import signing
from pocsync.errors import StoreError
from pocsync.store import Store, base, search
from tests.support.fed import T0, Fed, put

NORMAL, FULL = 1, 2
SYNC = ("PRAGMA synchronous=", "BEGIN", "COMMIT", "ROLLBACK")


def make_store(tmp_path: Path, fed: Fed, node: str, name: str | None = None) -> Store:
    s = Store.create(tmp_path / f"{name or node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    return s


def sedit(store: Store, fed: Fed, key: str, t: int = T0):
    return store.edit([put(key)], key=fed.key(store.node_id), author=f"staff@{store.node_id}", now_ms_=t)


def synchronous(store: Store) -> int:
    return int(store.conn.execute("PRAGMA synchronous").fetchone()[0])


def traced(store: Store) -> list[str]:
    """The statements that set synchronous or control a transaction, as the connection runs them from now on."""
    seen: list[str] = []
    store.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.startswith(SYNC) else None)
    return seen


@pytest.fixture()
def fed() -> Fed:
    return Fed()


@pytest.fixture()
def at_commit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``PRAGMA synchronous`` as read inside each write transaction, just before its COMMIT."""
    seen: list[int] = []
    keep_up = search.keep_up

    def spy(conn: sqlite3.Connection) -> None:
        seen.append(int(conn.execute("PRAGMA synchronous").fetchone()[0]))
        keep_up(conn)

    monkeypatch.setattr(search, "keep_up", spy)
    return seen


def test_a_receipt_commits_with_normal_and_an_edit_with_full(tmp_path: Path, fed: Fed, at_commit: list[int]) -> None:
    eu, osce = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "osce")
    at_commit.clear()
    eu_sql = traced(eu)
    sedit(eu, fed, "DEU/technical")
    sedit(eu, fed, "FRA/technical", t=T0 + 1)
    assert at_commit == [FULL, FULL]
    assert eu_sql == ["BEGIN IMMEDIATE", "COMMIT"] * 2  # never a NORMAL on the edit path
    at_commit.clear()
    osce_sql = traced(osce)
    first, second = eu.export()
    assert osce.receive(first, source="mqtt", now_ms_=T0 + 2).status == "accepted"
    assert at_commit == [NORMAL]
    assert osce_sql == ["PRAGMA synchronous=NORMAL", "BEGIN IMMEDIATE", "COMMIT", "PRAGMA synchronous=FULL"]
    assert synchronous(osce) == FULL
    # everything else on the same connection is FULL again: an audit flush, a local record, a revocation
    at_commit.clear()
    osce.audit(actor="cli:test", action="entry.read", target="DEU/technical", result="ok")
    assert at_commit == [FULL]
    # a pulled batch: one NORMAL transaction for all of it
    osce_sql.clear()
    at_commit.clear()
    outs = osce.receive_many([first, second], source="pull:eu")
    assert [o.status for o in outs] == ["duplicate", "accepted"]
    assert at_commit == [NORMAL] and osce_sql.count("BEGIN IMMEDIATE") == 1
    assert osce_sql[0] == "PRAGMA synchronous=NORMAL" and osce_sql[-1] == "PRAGMA synchronous=FULL"


def test_a_receipt_inside_a_durable_transaction_is_durable(tmp_path: Path, fed: Fed, at_commit: list[int]) -> None:
    """``log import`` wraps its receipts in one durable transaction: they join it and stay FULL."""
    eu, osce = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "osce")
    sedit(eu, fed, "DEU/technical")
    at_commit.clear()
    sql = traced(osce)
    with osce.transaction():
        assert synchronous(osce) == FULL
        for env in eu.export():
            assert osce.receive(env, source="import", now_ms_=T0 + 1).status == "accepted"
        assert synchronous(osce) == FULL
    assert at_commit == [FULL] and sql == ["BEGIN IMMEDIATE", "COMMIT"]


def test_synchronous_read_inside_transactions_and_nesting(tmp_path: Path, fed: Fed) -> None:
    s = make_store(tmp_path, fed, "osce")
    with s.transaction(durable=False):
        assert synchronous(s) == NORMAL
        with s.transaction():  # joins the outer one: its durability is the outer's
            assert synchronous(s) == NORMAL
    assert synchronous(s) == FULL
    with s.transaction():
        assert synchronous(s) == FULL
        with s.transaction(durable=False):
            assert synchronous(s) == FULL
    assert synchronous(s) == FULL


def test_full_is_restored_after_a_receipt_that_raised(
    tmp_path: Path, fed: Fed, monkeypatch: pytest.MonkeyPatch, at_commit: list[int]
) -> None:
    eu, osce = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "osce")
    sedit(eu, fed, "DEU/technical")
    (env,) = list(eu.export())

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("failed inside the receipt")

    with monkeypatch.context() as m:
        m.setattr(signing, "own_claim", boom)
        sql = traced(osce)
        with pytest.raises(RuntimeError, match="inside the receipt"):
            osce.receive(env, source="mqtt", now_ms_=T0 + 1)
    assert sql == ["PRAGMA synchronous=NORMAL", "BEGIN IMMEDIATE", "ROLLBACK", "PRAGMA synchronous=FULL"]
    assert synchronous(osce) == FULL and not osce.conn.in_transaction
    assert osce.heads() == {}  # rolled back
    # a body that raises in a bare non-durable transaction: the same
    with pytest.raises(ValueError), osce.transaction(durable=False):
        osce.set_meta("x", "1")
        raise ValueError("body")
    assert synchronous(osce) == FULL and osce.get_meta("x") is None
    at_commit.clear()
    assert osce.receive(env, source="mqtt", now_ms_=T0 + 1).status == "accepted"
    sedit(osce, fed, "AUT/technical", t=T0 + 2)
    assert at_commit == [NORMAL, FULL]


@pytest.fixture()
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the store itself fsyncs (the real fsync still runs)."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(base.os, "fsync", spy)
    return seen


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names the fsynced file from /proc")
def test_a_receipt_of_this_nodes_own_chain_is_synced_before_it_returns(
    tmp_path: Path, fed: Fed, fsyncs: list[str], at_commit: list[int]
) -> None:
    """A restored store pulling its own change-sets back (``recover``): the signing guard reads its own head
    from the log, so those receipts must not be lost to a power loss: the WAL is synced before they return."""
    eu, osce = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "osce")
    for i, k in enumerate(("DEU/technical", "FRA/technical")):
        sedit(eu, fed, k, t=T0 + i)
    envs = list(eu.export())
    restored = make_store(tmp_path, fed, "eu", name="eu-restored")
    wal = os.path.realpath(f"{restored.path}-wal")
    at_commit.clear()
    assert restored.receive(envs[0], source="pull:osce", now_ms_=T0 + 5).status == "accepted"
    assert at_commit == [NORMAL] and fsyncs == [wal]
    assert [o.status for o in restored.receive_many(envs, source="pull:osce")] == ["duplicate", "accepted"]
    assert fsyncs == [wal, wal]
    restored.receive(envs[1], source="pull:osce")  # a duplicate: nothing written, no sync
    assert fsyncs == [wal, wal]
    for env in envs:  # another origin's change-sets: never synced on their own
        osce.receive(env, source="mqtt", now_ms_=T0 + 5)
    assert fsyncs == [wal, wal] and synchronous(restored) == FULL


def test_a_failed_sync_is_a_store_error(tmp_path: Path, fed: Fed, monkeypatch: pytest.MonkeyPatch) -> None:
    eu, restored = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "eu", name="eu-restored")
    sedit(eu, fed, "DEU/technical")
    (env,) = list(eu.export())

    def eio(_fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(base.os, "fsync", eio)
    with pytest.raises(StoreError, match="cannot sync") as exc:
        restored.receive(env, source="pull:osce", now_ms_=T0 + 1)
    assert exc.value.reason == "sync_failed" and synchronous(restored) == FULL


def test_moves_own_chain_counts_verified_outcomes_of_this_node_only() -> None:
    from pocsync.core.outcome import Outcome, Status

    def o(status: Status, origin: str, reason: str = "") -> Outcome:
        return Outcome(status, reason=reason, origin=origin, seq=3)

    assert signing.moves_own_chain([o(Status.ACCEPTED, "eu")], "eu")
    assert signing.moves_own_chain([o(Status.DUPLICATE, "eu"), o(Status.EQUIVOCATION, "eu")], "eu")
    assert signing.moves_own_chain([o(Status.PARKED, "eu", "gap")], "eu")
    assert not signing.moves_own_chain([o(Status.ACCEPTED, "osce"), o(Status.DUPLICATE, "eu")], "eu")
    assert not signing.moves_own_chain([o(Status.PARKED, "eu", "manifest_unknown")], "eu")  # anybody's word
    assert not signing.moves_own_chain([o(Status.PARKED, "eu", "clock_skew")], "eu")
    assert not signing.moves_own_chain([o(Status.QUARANTINED, "eu", "bad_signature")], "eu")
