"""Read-only queries on a node's store for operators (health, the ops feed, the demo).

The one owner of the SQL that ``pocsync.ops``, ``pocsync.api.ops`` and ``pocsync.demo`` need: each
function takes the store's connection (``Store.conn``, rows as :class:`sqlite3.Row`) and returns
plain values.  They only read counts, ids, seqs, reasons and times, never entry content.
"""

from __future__ import annotations

import sqlite3
from typing import Any

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
