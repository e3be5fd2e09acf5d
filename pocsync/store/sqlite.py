"""SQLite store of one node (docs/ARCHITECTURE.md §4; SECURITY.md: a crash loses no acknowledged edit).

* WAL journal, ``synchronous=FULL``: a transaction that returned is on disk.  The exception (ADR 42):
  a transaction that only receives peers' change-sets commits with ``synchronous=NORMAL`` (in the OS
  when it returns, on disk at the next FULL commit or checkpoint), unless it concerns this node's own chain.
* Every write happens in one ``BEGIN IMMEDIATE`` transaction, so the CLI and the
  daemon can both write: seq and hlc of a local edit are allocated, the
  change-set is signed, appended and the view updated in the same transaction.
* :class:`SQLiteState` implements the core's ``State`` interface, so the rules that
  run here are exactly those of :class:`pocsync.core.replica.Replica`.

The :class:`~pocsync.store.store.Store` (the node's store file) is composed in
:mod:`pocsync.store.store` from the modules ``base`` (file, transactions, meta, manifest),
``guard`` (the facts of the signing guard), ``log`` (receiving, signing, publishing), ``reads``,
``checks_reads`` and ``local`` (held-change links, tokens, audit).  The tables derived by applying
change-sets are written by :mod:`pocsync.store.derived`.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta

from pocsync.core import changeset as csmod
from pocsync.core.changeset import ChangeSet
from pocsync.core.outcome import (
    MANIFEST_DEPENDENT,
    MAX_EVIDENCE_PER_ORIGIN,
    MAX_PARKED_BYTES_PER_ORIGIN,
    MAX_PARKED_PER_ORIGIN,
    QUARANTINE_HEAD_BYTES,
    UNVERIFIED_PARK_REASONS,
    Head,
    Limits,
    Proof,
)
from pocsync.store.derived import DerivedRows
from pocsync.store.rows import now_ms, utc_ago, utcnow

__all__ = [
    "MAX_PARKED_BYTES_PER_ORIGIN",
    "MAX_PARKED_PER_ORIGIN",
    "QUARANTINE_FULL_BYTES_PER_SOURCE",
    "QUARANTINE_MAX_ROWS_PER_SOURCE",
    "QUARANTINE_TTL",
    "SQLiteState",
    "UNVERIFIED_PARK_TTL",
    "now_ms",
    "utcnow",
]


# The quarantine is a bounded record of what this node refused (issue 11, ADR 14): one row per distinct
# item (sha256 of its bytes) with a count, its reason, true size and first bytes.  The whole item is kept
# only when a manifest change could make it valid (MANIFEST_DEPENDENT) and it fits the envelope cap and
# its source's byte budget; rows are capped per source and expire.
QUARANTINE_MAX_ROWS_PER_SOURCE = 500
QUARANTINE_FULL_BYTES_PER_SOURCE = 8 * 1024 * 1024
QUARANTINE_TTL = timedelta(days=30)
UNVERIFIED_PARK_TTL = timedelta(days=7)


class SQLiteState(DerivedRows):
    """The core's State interface on one SQLite connection (inside a transaction).

    The log, parked and quarantined items, chain evidence and proofs are here; the derived tables (latest
    assertions, the view, records, held changes) are in :class:`pocsync.store.derived.DerivedRows`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        source: str = "",
        max_envelope_bytes: int = 256 * 1024,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(conn)
        self.limits = limits or Limits(max_envelope_bytes=max_envelope_bytes)
        self.max_envelope_bytes = self.limits.max_envelope_bytes
        self.source = source  # recorded with each appended change-set (local, import, mqtt, pull, …)
        self._kept: dict[str, tuple[str, str, int]] = {}  # id -> (received_at, source, published) across reset()

    # log
    def logged(self, origin: str, seq: int) -> Head | None:
        r = self._one("SELECT seq, id, hlc FROM log WHERE origin=? AND seq=?", origin, seq)
        return Head(r["seq"], r["id"], r["hlc"]) if r else None

    def log_envelope(self, origin: str, seq: int) -> bytes | None:
        r = self._one("SELECT envelope FROM log WHERE origin=? AND seq=?", origin, seq)
        return bytes(r["envelope"]) if r else None

    def append(self, cs: ChangeSet) -> None:
        received_at, source, published = self._kept.pop(cs.id, (utcnow(), self.source, 0))
        self.c.execute(
            "INSERT INTO log (origin, seq, id, hlc, prev, manifest, author, keyid, envelope, received_at, source,"
            " published) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                cs.origin,
                cs.seq,
                cs.id,
                cs.hlc,
                cs.prev,
                cs.manifest,
                cs.author,
                cs.keyid,
                cs.envelope,
                received_at,
                source,
                published,
            ),
        )

    def heads(self) -> dict[str, Head]:
        rows = self.c.execute(
            "SELECT l.origin, l.seq, l.id, l.hlc FROM log l JOIN (SELECT origin, max(seq) AS m FROM log"
            " GROUP BY origin) h ON l.origin=h.origin AND l.seq=h.m"
        )
        return {r["origin"]: Head(r["seq"], r["id"], r["hlc"]) for r in rows}

    def max_hlc(self) -> str | None:
        r = self._one("SELECT max(hlc) AS m FROM log")
        return r["m"] if r else None

    def all_log(self) -> list[bytes]:
        return [bytes(r["envelope"]) for r in self.c.execute("SELECT envelope FROM log ORDER BY origin, seq")]

    # parked / quarantine
    def park(self, cs_id: str, origin: str | None, seq: int | None, data: bytes, reason: str, message: str) -> None:
        self.c.execute(
            "INSERT INTO parked (id, origin, seq, reason, message, envelope, parked_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET reason=excluded.reason, message=excluded.message",
            (cs_id, origin, seq, reason, message, data, utcnow()),
        )
        if reason in UNVERIFIED_PARK_REASONS:
            self._bound_unverified(origin)
        else:
            self._bound_verified(origin)

    def _bound_verified(self, origin: str | None) -> None:
        """Verified parked items of one origin: at most MAX_PARKED_PER_ORIGIN and _BYTES_, nearest seqs kept."""
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        rows = self.c.execute(
            f"SELECT id, length(envelope) AS size FROM parked WHERE origin IS ? AND reason NOT IN"
            f" ({','.join('?' * len(reasons))}) ORDER BY seq, id",
            (origin, *reasons),
        ).fetchall()
        n = size = 0
        for r in rows:
            n += 1
            size += r["size"]
            if n > MAX_PARKED_PER_ORIGIN or size > MAX_PARKED_BYTES_PER_ORIGIN:
                self.c.execute("DELETE FROM parked WHERE id=?", (r["id"],))

    def _bound_unverified(self, origin: str | None) -> None:
        """Unverified parked items: expire after UNVERIFIED_PARK_TTL, oldest evicted beyond the caps."""
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        marks = ",".join("?" * len(reasons))
        self.c.execute(
            f"DELETE FROM parked WHERE reason IN ({marks}) AND parked_at < ?", (*reasons, utc_ago(UNVERIFIED_PARK_TTL))
        )
        lim = self.limits  # sync.toml [limits] max_parked_per_origin, max_parked, max_parked_bytes
        checks = [
            (
                f"reason IN ({marks}) AND origin IS ?",
                (*reasons, origin),
                lim.max_parked_per_origin,
                lim.max_parked_bytes // 4,
            ),
            (f"reason IN ({marks})", reasons, lim.max_parked, lim.max_parked_bytes),
        ]
        for where, args, max_n, max_bytes in checks:
            rows = self.c.execute(
                f"SELECT id, length(envelope) AS size FROM parked WHERE {where} ORDER BY parked_at DESC, rowid DESC",
                args,
            ).fetchall()
            n = size = 0
            for r in rows:
                n += 1
                size += r["size"]
                if n > max_n or size > max_bytes:
                    self.c.execute("DELETE FROM parked WHERE id=?", (r["id"],))

    def parked_for(self, origin: str, seq: int) -> list[bytes]:
        return [
            bytes(r["envelope"])
            for r in self.c.execute("SELECT envelope FROM parked WHERE origin=? AND seq=? ORDER BY id", (origin, seq))
        ]

    def all_parked(self, reason: str | None = None) -> list[bytes]:
        if reason is None:
            rows = self.c.execute("SELECT envelope FROM parked ORDER BY origin, seq, id")
        else:
            rows = self.c.execute("SELECT envelope FROM parked WHERE reason=? ORDER BY origin, seq, id", (reason,))
        return [bytes(r["envelope"]) for r in rows]

    def unpark(self, cs_id: str) -> None:
        self.c.execute("DELETE FROM parked WHERE id=?", (cs_id,))

    # --- chain evidence: verified change-sets refused by the chain checks (§8 step 6, ADR 37) --------------
    def keep_evidence(self, cs_id: str, origin: str, seq: int, data: bytes) -> None:
        self.c.execute(
            "INSERT OR IGNORE INTO chain_evidence (id, origin, seq, envelope, kept_at) VALUES (?,?,?,?,?)",
            (cs_id, origin, seq, data, utcnow()),
        )
        self.c.execute(
            "DELETE FROM chain_evidence WHERE origin=? AND id NOT IN (SELECT id FROM chain_evidence"
            " WHERE origin=? ORDER BY seq, id LIMIT ?)",
            (origin, origin, MAX_EVIDENCE_PER_ORIGIN),
        )

    def verified_at(self, origin: str, seq: int) -> list[bytes]:
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        rows = self.c.execute(
            f"SELECT id, envelope FROM parked WHERE origin=? AND seq=? AND reason NOT IN"
            f" ({','.join('?' * len(reasons))}) UNION SELECT id, envelope FROM chain_evidence WHERE origin=? AND seq=?"
            " ORDER BY id",
            (origin, seq, *reasons, origin, seq),
        )
        return [bytes(r["envelope"]) for r in rows]

    # --- end chain evidence ------------------------------------------------------------------------------

    def quarantine(self, data: bytes, reason: str, message: str, source: str) -> None:
        """Record a refusal: bounded (see QUARANTINE_*), de-duplicated by the item's hash."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        now = utcnow()
        cur = self.c.execute(
            "UPDATE quarantine SET count=count+1, last_at=?, message=? WHERE id=? AND reason=?",
            (now, message[:1000], digest, reason),
        )
        if cur.rowcount:
            return
        self.c.execute("DELETE FROM quarantine WHERE coalesce(last_at, received_at) < ?", (utc_ago(QUARANTINE_TTL),))
        keep = data[:QUARANTINE_HEAD_BYTES]
        if reason in MANIFEST_DEPENDENT and len(data) <= self.max_envelope_bytes:
            held = self.c.execute(
                "SELECT coalesce(sum(length(envelope)), 0) FROM quarantine WHERE source=?", (source,)
            ).fetchone()[0]
            if held + len(data) <= QUARANTINE_FULL_BYTES_PER_SOURCE:
                keep = data  # a manifest change may make it valid: keep it whole to retry
        self.c.execute(
            "INSERT INTO quarantine (id, reason, message, source, size, envelope, received_at, count, last_at)"
            " VALUES (?,?,?,?,?,?,?,1,?)",
            (digest, reason, message[:1000], source, len(data), keep, now, now),
        )
        self.c.execute(
            "DELETE FROM quarantine WHERE source=? AND n NOT IN"
            " (SELECT n FROM quarantine WHERE source=? ORDER BY n DESC LIMIT ?)",
            (source, source, QUARANTINE_MAX_ROWS_PER_SOURCE),
        )

    def take_quarantined(self, reasons: frozenset[str]) -> list[bytes]:
        """Whole quarantined items with these reasons (to retry); rows holding only a prefix stay."""
        marks = ",".join("?" * len(reasons))
        where = f"reason IN ({marks}) AND size = length(envelope)"
        rows = self.c.execute(
            f"SELECT n, envelope FROM quarantine WHERE {where} ORDER BY n", tuple(sorted(reasons))
        ).fetchall()
        self.c.execute(f"DELETE FROM quarantine WHERE {where}", tuple(sorted(reasons)))
        return [bytes(r["envelope"]) for r in rows]

    # proofs
    def proofs(self) -> list[Proof]:
        return [
            Proof(r["origin"], r["seq"], bytes(r["a"]), bytes(r["b"]))
            for r in self.c.execute("SELECT * FROM proofs ORDER BY origin, seq, id_a, id_b")
        ]

    def add_proof(self, proof: Proof) -> bool:
        ids = sorted(
            [
                (csmod.peek_identity(proof.a, max_bytes=1 << 30)[0], proof.a),
                (csmod.peek_identity(proof.b, max_bytes=1 << 30)[0], proof.b),
            ]
        )
        cur = self.c.execute(
            "INSERT OR IGNORE INTO proofs (origin, seq, id_a, id_b, a, b, received_at) VALUES (?,?,?,?,?,?,?)",
            (proof.origin, proof.seq, ids[0][0], ids[1][0], ids[0][1], ids[1][1], utcnow()),
        )
        return cur.rowcount > 0

    def reset(self) -> None:
        self._kept = {
            r["id"]: (r["received_at"], r["source"], r["published"])
            for r in self.c.execute("SELECT id, received_at, source, published FROM log")
        }
        for table in (
            "log",
            "parked",
            "assertions",
            "withdrawals",
            "view",
            "refused",
            "key_deaths",
            "records",
            "held_history",
            "held_ops",
            "held_puts",
        ):
            self.c.execute(f"DELETE FROM {table}")
        self._written.clear()
        self._texts.clear()
