"""The log of a node's store: receiving, signing and publishing change-sets, and ``log verify``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import acceptance, signing
from pocsync.core.acceptance import LogProblem
from pocsync.core.outcome import UNVERIFIED_PARK_REASONS, Outcome, Proof
from pocsync.errors import SigningRefused
from pocsync.store.guard import SigningGuard
from pocsync.store.rows import now_ms


class LogOps(SigningGuard):
    """Receiving, signing and publishing change-sets; the rules are the core's (acceptance, signing guard)."""

    def receive(self, data: bytes, *, source: str = "import", now_ms_: int | None = None) -> Outcome:
        """Receive one change-set from a peer.  Its own transaction is not durable (ADR 42: it is fetched
        again if a power loss takes it), unless it concerns this node's own chain; inside a caller's
        transaction (``log import``, a pulled batch) it has the caller's durability."""
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction(durable=False):
            rep = self.replica(source=source)
            out = rep.receive(data, now_ms=t, source=source)
            me = self.get_meta("node_id")
            claim = signing.own_claim([out, *out.also_accepted], me)
            if claim is not None:  # our own origin's change-sets seen from elsewhere: keep the guard right
                self.set_meta("signing_blocked", claim)
            if signing.moves_own_chain([out, *out.also_accepted], me):
                self.sync_on_commit()  # the signing guard reads our own head from the log: it must not go back
            return out

    def receive_many(self, envelopes: list[bytes], *, source: str) -> list[Outcome]:
        """Receive a pulled batch in one transaction, not durable unless it concerns this node's own chain
        (as :meth:`receive`)."""
        with self.transaction(durable=False):
            return [self.receive(e, source=source) for e in envelopes]

    def drop_unverified_parked(self, origin: str | None = None) -> int:
        """Forget parked items that never verified (of ``origin``, or all): what `recover` clears."""
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        sql = f"DELETE FROM parked WHERE reason IN ({','.join('?' * len(reasons))})"
        args: tuple[Any, ...] = reasons
        if origin is not None:
            sql += " AND origin IS ?"
            args = (*reasons, origin)
        with self.transaction():
            return self.conn.execute(sql, args).rowcount

    def retry_parked(self, *, now_ms_: int | None = None, reason: str | None = None) -> list[Outcome]:
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction():
            return self.replica().retry_parked(now_ms=t, reason=reason)

    def edit(
        self, ops: list[dict[str, Any]], *, key: Ed25519PrivateKey, author: str, now_ms_: int | None = None
    ) -> Outcome:
        """One local edit = one change-set, signed and applied in one immediate transaction."""
        with self.transaction():
            blocked = self.signing_blocked()
            if blocked:
                raise SigningRefused(
                    f"this node must not sign: {blocked}. Run `pocsync recover` or have the root"
                    " declare a chain restart"
                )
            t = now_ms_ if now_ms_ is not None else now_ms()
            return self.replica(source="local").edit(ops, me=self.node_id, key=key, author=author, now_ms=t)

    # --- for the daemon -------------------------------------------------------------
    def unpublished(self, limit: int | None = None) -> list[tuple[int, bytes]]:
        """This node's change-sets not yet published, oldest first (at most ``limit``: a node that imported
        a long history of its own must not hold all of it in memory at once; issue 13)."""
        me = self.node_id
        sql = "SELECT seq, envelope FROM log WHERE origin=? AND published=0 ORDER BY seq"
        args: tuple[Any, ...] = (me,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (me, limit)
        return [(r["seq"], bytes(r["envelope"])) for r in self.conn.execute(sql, args)]

    def mark_published(self, seqs: list[int]) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE log SET published=1 WHERE origin=? AND seq=?", [(self.node_id, s) for s in seqs]
            )

    def batch_after(self, origin: str, after: int, *, limit: int, max_bytes: int) -> tuple[list[bytes], bool]:
        """Change-sets of ``origin`` with seq > ``after``, at most ``limit`` and about ``max_bytes``."""
        out: list[bytes] = []
        size = 0
        rows = self.conn.execute(
            "SELECT envelope FROM log WHERE origin=? AND seq>? ORDER BY seq LIMIT ?", (origin, after, limit + 1)
        ).fetchall()
        for r in rows[:limit]:
            env = bytes(r["envelope"])
            if out and size + len(env) > max_bytes:
                return out, True
            out.append(env)
            size += len(env)
        return out, len(rows) > limit

    def add_proof(self, origin: str, seq: int, a: bytes, b: bytes, *, now_ms_: int | None = None) -> bool:
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction():
            return self.replica(source="proof").add_proof(Proof(origin, seq, a, b), now_ms=t)

    def export(self, *, origin: str | None = None, after: int = 0) -> Iterator[bytes]:
        sql = "SELECT envelope FROM log WHERE seq > ?"
        args: list[Any] = [after]
        if origin:
            sql += " AND origin = ?"
            args.append(origin)
        sql += " ORDER BY origin, seq"
        for r in self.conn.execute(sql, args):
            yield bytes(r["envelope"])

    def verify_log(self) -> tuple[int, list[LogProblem]]:
        """Re-verify every stored signature and chain link against the current manifest: the core's
        chain rule, the one acceptance applies (:func:`pocsync.core.acceptance.audit_log`)."""
        rows = (
            (r["origin"], r["seq"], r["id"], r["hlc"], bytes(r["envelope"]))
            for r in self.conn.execute("SELECT origin, seq, id, hlc, envelope FROM log ORDER BY origin, seq")
        )
        return acceptance.audit_log(rows, self.require_manifest(), self.limits)
