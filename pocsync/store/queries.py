"""Queries on a node's store for the layers above it (operators' health, the ops feed, the demo, the
directory's history, snapshot, sources and communication checks, the daemon's loops, the benchmarks).

The one owner of the SQL those modules need, so that no SQL appears outside ``pocsync.store``: each
function takes the store's connection (``Store.conn``, rows as :class:`sqlite3.Row`) and returns plain
values, rows, or a cursor where the caller walks a table that can be large (the log).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any, Literal

# origin -> (seq, hlc, received_at, id) of the highest change-set this node holds of that origin
LastChangeSets = dict[str, tuple[int, str, str, str]]


def last_changesets(conn: sqlite3.Connection) -> LastChangeSets:
    """Per origin, the head change-set this node holds: seq, hlc, time received and id."""
    return {
        r["origin"]: (r["seq"], r["hlc"], r["received_at"], r["id"])
        for r in conn.execute(
            "SELECT l.origin, l.seq, l.hlc, l.received_at, l.id FROM log l JOIN (SELECT origin, max(seq) m FROM log"
            " GROUP BY origin) h ON l.origin=h.origin AND l.seq=h.m"
        )
    }


def entry_count(conn: sqlite3.Connection) -> int:
    """How many entries the view holds."""
    return int(conn.execute("SELECT count(*) FROM view").fetchone()[0])


_REASON_COUNTS = {
    "quarantine": "SELECT reason, count(*) FROM quarantine GROUP BY reason",
    "refused": "SELECT reason, count(*) FROM refused GROUP BY reason",
    "parked": "SELECT reason, count(*) FROM parked GROUP BY reason",
}


def counts_by_reason(conn: sqlite3.Connection, table: Literal["quarantine", "refused", "parked"]) -> dict[str, int]:
    """Rows per reason of ``quarantine``, ``refused`` or ``parked``."""
    return {r[0]: r[1] for r in conn.execute(_REASON_COUNTS[table])}


def equivocations(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The (origin, seq) pairs this node holds a proof of equivocation for, in order."""
    return [
        {"origin": r[0], "seq": r[1]}
        for r in conn.execute("SELECT DISTINCT origin, seq FROM proofs ORDER BY origin, seq")
    ]


def recent_quarantine(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The last ``limit`` quarantine rows (received_at, reason), newest first."""
    return conn.execute("SELECT received_at, reason FROM quarantine ORDER BY n DESC LIMIT ?", (limit,)).fetchall()


def recent_refusals(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The last ``limit`` refusals with the time their change-set was received, newest first."""
    return conn.execute(
        "SELECT l.received_at, r.* FROM refused r LEFT JOIN log l ON l.id = r.cs_id ORDER BY l.received_at DESC"
        " LIMIT ?",
        (limit,),
    ).fetchall()


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
    return [
        dict(r)
        for r in conn.execute(
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY origin ORDER BY n) AS k FROM check_reports "
            "WHERE mailed=0) WHERE k <= ? ORDER BY n",
            (per_destination,),
        )
    ]


# --- communication checks (directory.campaigns, checkrecords, checkreports): node-local campaign state ---------
#: a campaign target: (campaign id, entry key, channel id)
Target = tuple[str, str, str]


def check_records(conn: sqlite3.Connection, key: str | None = None) -> Iterator[sqlite3.Row]:
    """The merged ``check`` registers (origin, hlc, entry); ``key``: that entry's channels only (an index range)."""
    if key is None:
        return conn.execute("SELECT origin, hlc, entry FROM records WHERE ns='check'")
    return conn.execute(
        "SELECT origin, hlc, entry FROM records WHERE ns='check' AND key >= ? AND key < ?",
        (key + "/", key + "/\U0010ffff"),
    )


def campaign_exists(conn: sqlite3.Connection, campaign: str) -> bool:
    return conn.execute("SELECT 1 FROM check_campaigns WHERE id=?", (campaign,)).fetchone() is not None


def add_campaign(
    conn: sqlite3.Connection,
    campaign: str,
    *,
    created_ms: int,
    deadline_s: int,
    selector: str,
    started_by: str,
    targets: list[tuple[str, str, str]],
) -> None:
    """A new campaign (running, or done when it has no target) and its targets (key, channel, label), pending."""
    conn.execute(
        "INSERT INTO check_campaigns (id, created_ms, deadline_seconds, selector, started_by, status)"
        " VALUES (?,?,?,?,?,?)",
        (campaign, created_ms, deadline_s, selector, started_by, "running" if targets else "done"),
    )
    conn.executemany(
        "INSERT INTO check_targets (campaign, key, channel, label, status) VALUES (?,?,?,?,?)",
        [(campaign, k, ch, label, "pending") for k, ch, label in targets],
    )


def last_campaign_ms(conn: sqlite3.Connection, started_by: str | None = None) -> int | None:
    """When the newest campaign (of ``started_by``) was created."""
    if started_by is None:
        row = conn.execute("SELECT max(created_ms) FROM check_campaigns").fetchone()
    else:
        row = conn.execute("SELECT max(created_ms) FROM check_campaigns WHERE started_by=?", (started_by,)).fetchone()
    last: int | None = row[0]
    return last


def pending_targets(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """Targets left ``sending`` by a stopped batch back to pending; then the first ``limit`` pending targets
    (with their campaign's deadline), oldest campaign first."""
    conn.execute("UPDATE check_targets SET status='pending', token_hash=NULL WHERE status='sending'")
    return conn.execute(
        "SELECT t.*, c.deadline_seconds FROM check_targets t JOIN check_campaigns c ON c.id = t.campaign "
        "WHERE t.status='pending' ORDER BY c.created_ms, t.key, t.label LIMIT ?",
        (limit,),
    ).fetchall()


def skip_target(conn: sqlite3.Connection, t: Target, *, skipped_by: str, now_ms: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='skipped', skipped_by=?, result_ms=? WHERE campaign=? AND key=? AND channel=?",
        (skipped_by, now_ms, *t),
    )


def start_sending(conn: sqlite3.Connection, t: Target, *, token_hash: str, deadline_ms: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='sending', token_hash=?, deadline_ms=?, "
        "attempts=attempts+1 WHERE campaign=? AND key=? AND channel=?",
        (token_hash, deadline_ms, *t),
    )


def target_state(conn: sqlite3.Connection, t: Target) -> sqlite3.Row | None:
    """A target's status and token hash (None: no such target)."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT status, token_hash FROM check_targets WHERE campaign=? AND key=? AND channel=?", t
    ).fetchone()
    return row


def mark_sent(conn: sqlite3.Connection, t: Target, *, now_ms: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='sent', sent_ms=?, error=NULL WHERE campaign=? AND key=? AND channel=?",
        (now_ms, *t),
    )


def mark_bounced(conn: sqlite3.Connection, t: Target, *, smtp_code: int | None, now_ms: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='bounced', token_hash=NULL, smtp_code=?, "
        "result_ms=? WHERE campaign=? AND key=? AND channel=?",
        (smtp_code, now_ms, *t),
    )


def mark_invalid(conn: sqlite3.Connection, t: Target, *, error: str | None, now_ms: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='invalid', token_hash=NULL, error=?, result_ms=? "
        "WHERE campaign=? AND key=? AND channel=?",
        (error, now_ms, *t),
    )


def mark_retry(conn: sqlite3.Connection, t: Target, *, error: str | None) -> None:
    conn.execute(
        "UPDATE check_targets SET status='pending', token_hash=NULL, error=? WHERE campaign=? AND key=? AND channel=?",
        (error, *t),
    )


def close_finished_campaigns(conn: sqlite3.Connection, now_ms: int) -> None:
    """Running campaigns with no target left pending, sending or sent are done."""
    conn.execute(
        "UPDATE check_campaigns SET status='done', done_ms=? WHERE status='running' AND NOT EXISTS (SELECT 1 FROM "
        "check_targets t WHERE t.campaign = check_campaigns.id AND t.status IN ('pending', 'sending', 'sent'))",
        (now_ms,),
    )


def past_deadline(conn: sqlite3.Connection, now_ms: int, limit: int) -> list[sqlite3.Row]:
    """Mailed targets (campaign, key, channel) whose deadline passed, earliest deadline first."""
    return conn.execute(
        "SELECT campaign, key, channel FROM check_targets WHERE status='sent' AND "
        "deadline_ms <= ? ORDER BY deadline_ms LIMIT ?",
        (now_ms, limit),
    ).fetchall()


def mark_no_response(conn: sqlite3.Connection, t: Target, *, now_ms: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='no_response', token_hash=NULL, result_ms=? "
        "WHERE campaign=? AND key=? AND channel=?",
        (now_ms, *t),
    )


def target_by_token(conn: sqlite3.Connection, token_hash: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM check_targets WHERE token_hash=?", (token_hash,)).fetchone()
    return row


def mark_acknowledged(conn: sqlite3.Connection, t: Target, *, now_ms: int, response_seconds: int) -> None:
    conn.execute(
        "UPDATE check_targets SET status='acknowledged', token_hash=NULL, result_ms=?, "
        "response_seconds=? WHERE campaign=? AND key=? AND channel=?",
        (now_ms, response_seconds, *t),
    )


def set_sent_ms(conn: sqlite3.Connection, t: Target, now_ms: int) -> None:
    conn.execute("UPDATE check_targets SET sent_ms=? WHERE campaign=? AND key=? AND channel=?", (now_ms, *t))


def awaiting_targets(conn: sqlite3.Connection, key: str, now_ms: int) -> list[sqlite3.Row]:
    """This node's targets of ``key`` mailed (or being mailed) whose deadline is still ahead."""
    return conn.execute(
        "SELECT * FROM check_targets WHERE key=? AND status IN ('sent', 'sending') AND deadline_ms > ?", (key, now_ms)
    ).fetchall()


def last_sent_target(conn: sqlite3.Connection, key: str, channel: str, now_ms: int) -> sqlite3.Row | None:
    """The latest mailed target of (key, channel) still within its deadline."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM check_targets WHERE key=? AND channel=? AND status='sent' AND "
        "deadline_ms > ? ORDER BY sent_ms DESC LIMIT 1",
        (key, channel, now_ms),
    ).fetchone()
    return row


def view_origins(conn: sqlite3.Connection) -> dict[str, str]:
    """Entry key -> origin of its winning version."""
    return {r["key"]: r["origin"] for r in conn.execute("SELECT key, origin FROM view")}


def campaigns_newest_first(conn: sqlite3.Connection, campaign: str | None = None) -> list[sqlite3.Row]:
    """Every campaign (or the one named), newest first."""
    if campaign:
        return conn.execute("SELECT * FROM check_campaigns WHERE id=? ORDER BY created_ms DESC", (campaign,)).fetchall()
    return conn.execute("SELECT * FROM check_campaigns ORDER BY created_ms DESC").fetchall()


def targets_of(conn: sqlite3.Connection, campaign: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM check_targets WHERE campaign=?", (campaign,)).fetchall()


def reports_since(conn: sqlite3.Connection, *, received_from: str, since_ms: int, reporter: str | None = None) -> int:
    """Reports received from a peer (or made by ``reporter`` there) after ``since_ms``."""
    if reporter is not None:
        row = conn.execute(
            "SELECT count(*) FROM check_reports WHERE reporter=? AND received_from=? AND at_ms > ?",
            (reporter, received_from, since_ms),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT count(*) FROM check_reports WHERE received_from=? AND at_ms > ?", (received_from, since_ms)
        ).fetchone()
    return int(row[0])


def add_report(
    conn: sqlite3.Connection, *, at_ms: int, key: str, origin: str, reporter: str, received_from: str, text: str
) -> None:
    conn.execute(
        "INSERT INTO check_reports (at_ms, key, origin, reporter, received_from, text) VALUES (?,?,?,?,?,?)",
        (at_ms, key, origin, reporter, received_from, text),
    )


def mark_report(conn: sqlite3.Connection, n: int, state: int) -> None:
    conn.execute("UPDATE check_reports SET mailed=? WHERE n=?", (state, n))


def report_counts(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Reports by destination (origin) and state (mailed: 0 waiting, 1 mailed, 2 forwarded): origin, mailed, n."""
    return conn.execute("SELECT origin, mailed, count(*) AS n FROM check_reports GROUP BY origin, mailed").fetchall()
