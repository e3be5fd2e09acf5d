"""Schema of a node's store and its migrations, written with sqlite-utils.

Each migration is a function of a :class:`sqlite_utils.Database` on the store's connection; the store runs the
pending ones inside its ``BEGIN IMMEDIATE`` transaction (sqlite-utils 4 joins an open transaction: it neither
commits nor opens its own) and records the last one applied in ``meta.schema_version``.  Migrations only ever
append: a released migration is never edited, and migrations 1-7 give, statement for statement, the tables,
columns, keys, constraints and indexes of the raw SQL they replaced (tests/unit/test_schema.py compares a fresh
store with one made by that SQL).

sqlite-utils writes ``CREATE TABLE``, ``CREATE INDEX`` and ``ALTER TABLE ... ADD COLUMN``.  Raw SQL is kept
where it cannot express the statement, each time said why: ``AUTOINCREMENT`` and a column ``UNIQUE`` constraint
(``Table.create`` has neither), a partial index (``create_index`` has no ``WHERE``), data copied by a query,
and the triggers that keep the search index in step with the view (migration 8, :mod:`pocsync.store.search`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database

Migration = Callable[[Database], None]


def _table(
    db: Database,
    name: str,
    columns: dict[str, Any],
    pk: str | tuple[str, ...],
    *,
    nullable: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """``CREATE TABLE``: every column ``NOT NULL`` but those in ``nullable`` and a lone primary key column."""
    free = set(nullable) | ({pk} if isinstance(pk, str) else set())
    db.table(name).create(columns, pk=pk, not_null={c for c in columns if c not in free}, defaults=defaults or {})


def _index(db: Database, table: str, name: str, *columns: str) -> None:
    db.table(table).create_index(columns, index_name=name)


_ASSERTION = {"origin": str, "key": str, "op": str, "hlc": str, "cs_id": str, "idx": int, "seq": int, "author": str}
_OP = {
    "key": str,
    "origin": str,
    "op": str,
    "hlc": str,
    "cs_id": str,
    "idx": int,
    "seq": int,
    "author": str,
    "entry": str,
}


def _log_tables(db: Database) -> None:
    _table(db, "meta", {"key": str, "value": str}, "key")
    _table(db, "manifests", {"version": int, "id": str, "envelope": bytes, "installed_at": str}, "version")
    # raw: a column UNIQUE constraint (Table.create has none; a separate unique index would be another object)
    db.execute("""CREATE TABLE log (origin TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,
               hlc TEXT NOT NULL, prev TEXT, manifest INTEGER NOT NULL, author TEXT NOT NULL,
               keyid TEXT NOT NULL, envelope BLOB NOT NULL, received_at TEXT NOT NULL, source TEXT NOT NULL,
               published INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (origin, seq))""")
    _index(db, "log", "log_hlc", "hlc")
    _table(
        db,
        "parked",
        {"id": str, "origin": str, "seq": int, "reason": str, "message": str, "envelope": bytes, "parked_at": str},
        "id",
        nullable=("origin", "seq"),
    )
    _index(db, "parked", "parked_pos", "origin", "seq")
    # raw: AUTOINCREMENT (numbers never reused after a delete); Table.create cannot ask for it
    db.execute("""CREATE TABLE quarantine (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, reason TEXT NOT NULL,
               message TEXT NOT NULL, source TEXT NOT NULL, size INTEGER NOT NULL, envelope BLOB NOT NULL,
               received_at TEXT NOT NULL)""")
    _table(
        db,
        "proofs",
        {"origin": str, "seq": int, "id_a": str, "id_b": str, "a": bytes, "b": bytes, "received_at": str},
        ("origin", "seq", "id_a", "id_b"),
    )


def _v1(db: Database) -> None:
    """The first schema."""
    _log_tables(db)
    _table(db, "assertions", {**_ASSERTION, "entry": str}, ("origin", "key"), nullable=("entry",))
    _index(db, "assertions", "assertions_key", "key")
    _table(
        db,
        "withdrawals",
        {"key": str, "origin": str, "hlc": str, "cs_id": str, "idx": int, "seq": int, "author": str},
        "key",
    )
    _table(
        db,
        "view",
        {"key": str, "origin": str, "hlc": str, "cs_id": str, "idx": int, "seq": int, "author": str, "entry": str},
        "key",
    )
    _table(
        db,
        "refused",
        {"cs_id": str, "idx": int, "origin": str, "seq": int, "key": str, "op": str, "reason": str, "message": str},
        ("cs_id", "idx"),
    )
    # raw: AUTOINCREMENT, as for the quarantine
    db.execute("""CREATE TABLE audit (n INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
               action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')""")


def _v2(db: Database) -> None:
    """(issue 11) the quarantine keeps a bounded, de-duplicated record (count, last seen); index by source for
    the per-source caps; node-local token deny-list (ADR 13)."""
    db.table("quarantine").add_column("count", int, not_null_default=1)
    db.table("quarantine").add_column("last_at", str)
    _index(db, "quarantine", "quarantine_id", "id")
    _index(db, "quarantine", "quarantine_source", "source", "n")
    _index(db, "parked", "parked_reason", "reason", "parked_at")
    _table(db, "revoked_tokens", {"jti": str, "exp": int, "reason": str, "at": str}, "jti")
    # derived from the log like the view: the latest delete or withdrawal of each key by any origin
    _table(db, "key_deaths", {"key": str, "hlc": str}, "key")
    # raw: rows computed by a query from existing tables
    db.execute("""INSERT INTO key_deaths (key, hlc) SELECT key, max(hlc) FROM (
               SELECT key, hlc FROM assertions WHERE op IN ('delete', 'withdraw')
               UNION ALL SELECT key, hlc FROM withdrawals) GROUP BY key""")


def _v3(db: Database) -> None:
    """Effects of op kinds outside the entry namespace (PROTOCOL.md §8.2): the winning op per key."""
    _table(
        db,
        "records",
        {
            "ns": str,
            "key": str,
            "origin": str,
            "op": str,
            "hlc": str,
            "cs_id": str,
            "idx": int,
            "seq": int,
            "author": str,
            "entry": str,
        },
        ("ns", "key"),
    )


def _v4(db: Database) -> None:
    """(issue 13) the publisher's "own change-sets not yet published" without reading every logged envelope."""
    # raw: a partial index (create_index has no WHERE clause)
    db.execute("CREATE INDEX log_unpublished ON log (origin, seq) WHERE published = 0")


def _v5(db: Database) -> None:
    """Held contact changes (issue 16, PROTOCOL.md §16), filled only while the feature is on: every entry op and
    hold op per key (the sweep's input) and the held puts that have not taken effect (derived, with the digest
    lines they contribute)."""
    for name in ("held_history", "held_ops"):
        _table(db, name, _OP, ("cs_id", "idx"), nullable=("entry",))
        _index(db, name, f"{name}_key", "key")
    _table(
        db,
        "held_puts",
        {
            "put_ref": str,
            "key": str,
            "status": str,
            "origin": str,
            "hlc": str,
            "takes_effect_ms": int,
            "summary": str,
            "entry": str,
            "previous": str,
            "lines": str,
        },
        "put_ref",
        nullable=("takes_effect_ms",),
    )
    _index(db, "held_puts", "held_puts_key", "key")
    # node-local (never replicated): the objection links this node mailed, by SHA-256 of the token
    _table(
        db,
        "held_links",
        {"token_hash": str, "put_ref": str, "key": str, "created_at": str, "used_at": str},
        "token_hash",
        nullable=("used_at",),
    )
    _index(db, "held_links", "held_links_put", "put_ref")


def _v6(db: Database) -> None:
    """(issue 15, i15b) mail campaigns of communication checks, node-local (ADR 26): one row per campaign, one
    per (campaign, entry key, channel id) with the hash of its single-use acknowledgement token; no address is
    kept (it is read from the entry at send time).  PoC reports of wrong entries (counts and text, node-local)."""
    _table(
        db,
        "check_campaigns",
        {
            "id": str,
            "created_ms": int,
            "deadline_seconds": int,
            "selector": str,
            "started_by": str,
            "status": str,
            "done_ms": int,
        },
        "id",
        nullable=("done_ms",),
    )
    # raw: a column UNIQUE constraint (token_hash), as for the log
    db.execute("""CREATE TABLE check_targets (campaign TEXT NOT NULL, key TEXT NOT NULL, channel TEXT NOT NULL,
               label TEXT NOT NULL, status TEXT NOT NULL, token_hash TEXT UNIQUE, sent_ms INTEGER, deadline_ms INTEGER,
               result_ms INTEGER, response_seconds INTEGER, smtp_code INTEGER, skipped_by TEXT, error TEXT,
               attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (campaign, key, channel))""")
    _index(db, "check_targets", "check_targets_status", "status", "deadline_ms")
    # raw: AUTOINCREMENT, as for the quarantine
    db.execute("""CREATE TABLE check_reports (n INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
               key TEXT NOT NULL, origin TEXT NOT NULL, reporter TEXT NOT NULL, received_from TEXT NOT NULL,
               text TEXT NOT NULL, mailed INTEGER NOT NULL DEFAULT 0)""")


def _v7(db: Database) -> None:
    """(ADR 37) verified change-sets refused by the chain checks, kept whole as evidence so that a second
    change-set at the same (origin, seq) still makes a proof (PROTOCOL.md §8 step 6, §11); not cleared by reset."""
    _table(db, "chain_evidence", {"id": str, "origin": str, "seq": int, "envelope": bytes, "kept_at": str}, "id")
    _index(db, "chain_evidence", "chain_evidence_pos", "origin", "seq")


def _v8(db: Database) -> None:
    """Full-text search of the merged view (issue 12): see :func:`pocsync.store.search.create`."""
    from pocsync.store import search

    search.create(db)


MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8]

SCHEMA_VERSION = len(MIGRATIONS)


def apply(conn: sqlite3.Connection, n: int) -> None:
    """Run migration ``n`` (0-based) on ``conn`` inside the caller's open transaction."""
    if not conn.in_transaction:
        raise RuntimeError("a migration runs inside the store's transaction")
    MIGRATIONS[n](Database(conn, recursive_triggers=False, execute_plugins=False))  # leave the connection as it is
    if not conn.in_transaction:  # a library that committed would split the migration: refuse to go on
        raise RuntimeError(f"migration {n + 1} ended the store's transaction")
