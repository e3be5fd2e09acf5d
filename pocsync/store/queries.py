"""Queries on a node's store for the layers above it (operators' health, the ops feed, the demo, the
directory's history, snapshot and sources, the daemon's loops, the benchmarks).

The one owner of the SQL those modules need, so that no SQL appears outside ``pocsync.store``: each
function takes the store's connection (``Store.conn``, rows as :class:`sqlite3.Row`) and returns plain
values, rows, or a cursor where the caller walks a table that can be large (the log).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator

# origin -> (seq, hlc, received_at, id) of the highest change-set this node holds of that origin
LastChangeSets = dict[str, tuple[int, str, str, str]]


def last_changesets(conn: sqlite3.Connection) -> LastChangeSets:
    """Per origin, the head change-set this node holds: seq, hlc, time received and id."""
    return {r["origin"]: (r["seq"], r["hlc"], r["received_at"], r["id"]) for r in conn.execute(
        "SELECT l.origin, l.seq, l.hlc, l.received_at, l.id FROM log l JOIN (SELECT origin, max(seq) m FROM log"
        " GROUP BY origin) h ON l.origin=h.origin AND l.seq=h.m")}


def entry_count(conn: sqlite3.Connection) -> int:
    """How many entries the view holds."""
    return int(conn.execute("SELECT count(*) FROM view").fetchone()[0])


_REASON_COUNTS = {
    "quarantine": "SELECT reason, count(*) FROM quarantine GROUP BY reason",
    "refused": "SELECT reason, count(*) FROM refused GROUP BY reason",
    "parked": "SELECT reason, count(*) FROM parked GROUP BY reason",
}


def counts_by_reason(conn: sqlite3.Connection, table: str) -> dict[str, int]:
    """Rows per reason of ``quarantine``, ``refused`` or ``parked``."""
    return {r[0]: r[1] for r in conn.execute(_REASON_COUNTS[table])}


def equivocations(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The (origin, seq) pairs this node holds a proof of equivocation for, in order."""
    return [{"origin": r[0], "seq": r[1]} for r in
            conn.execute("SELECT DISTINCT origin, seq FROM proofs ORDER BY origin, seq")]


def recent_quarantine(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The last ``limit`` quarantine rows (received_at, reason), newest first."""
    return conn.execute("SELECT received_at, reason FROM quarantine ORDER BY n DESC LIMIT ?", (limit,)).fetchall()


def recent_refusals(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The last ``limit`` refusals with the time their change-set was received, newest first."""
    return conn.execute(
        "SELECT l.received_at, r.* FROM refused r LEFT JOIN log l ON l.id = r.cs_id ORDER BY l.received_at DESC"
        " LIMIT ?", (limit,)).fetchall()


def arrivals(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every change-set of the log (origin, seq, source) in the order this node received them."""
    return conn.execute("SELECT origin, seq, source FROM log ORDER BY received_at").fetchall()


def origin_head(conn: sqlite3.Connection, origin: str) -> int:
    """The highest seq of ``origin`` in the log (0: none)."""
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM log WHERE origin = ?", (origin,)).fetchone()[0])


def log_in_order(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    """Every logged change-set (origin, seq, id, hlc, manifest, author, envelope) by origin and seq, as a cursor."""
    return conn.execute("SELECT origin, seq, id, hlc, manifest, author, envelope FROM log ORDER BY origin, seq")


def refusals(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every refused op (its change-set id, index, reason, message, …)."""
    return conn.execute("SELECT * FROM refused").fetchall()


def records(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every register of the records (checks, notices, …) by namespace and key."""
    return conn.execute("SELECT * FROM records ORDER BY ns, key").fetchall()


def held_lines(conn: sqlite3.Connection) -> list[str]:
    """The digest lines (JSON) of every held contact change (PROTOCOL.md §16.5)."""
    return [r["lines"] for r in conn.execute("SELECT lines FROM held_puts")]


def assertions_of(conn: sqlite3.Connection, origin: str) -> list[sqlite3.Row]:
    """The latest assertion (key, op, cs_id, entry) of ``origin`` per key."""
    return conn.execute("SELECT key, op, cs_id, entry FROM assertions WHERE origin=?", (origin,)).fetchall()


def held_puts_of(conn: sqlite3.Connection, origin: str) -> list[sqlite3.Row]:
    """The held contact changes (key, put_ref, entry) of ``origin``."""
    return conn.execute("SELECT key, put_ref, entry FROM held_puts WHERE origin=?", (origin,)).fetchall()


def meta_with_prefix(conn: sqlite3.Connection, prefix: str) -> list[sqlite3.Row]:
    """The meta rows (key, value) whose key starts with ``prefix``."""
    return conn.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)).fetchall()


def forget_held_link(conn: sqlite3.Connection, put_ref: str) -> None:
    """Drop the PoC links issued for the held change ``put_ref`` (its notice mails all failed)."""
    conn.execute("DELETE FROM held_links WHERE put_ref=?", (put_ref,))


def waiting_reports(conn: sqlite3.Connection, per_destination: int) -> list[dict[str, Any]]:
    """The oldest ``per_destination`` reports not yet mailed or forwarded, per destination (origin), oldest first."""
    return [dict(r) for r in conn.execute(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY origin ORDER BY n) AS k FROM check_reports "
        "WHERE mailed=0) WHERE k <= ? ORDER BY n", (per_destination,))]
