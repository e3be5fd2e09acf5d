"""The facts of the signing guard, kept in the store's ``meta``; the rules are :mod:`pocsync.core.signing`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pocsync.core import signing
from pocsync.core.outcome import UNVERIFIED_PARK_REASONS
from pocsync.core.signing import ANNOUNCED_OWN_TTL, Announcement, AnnouncementAction
from pocsync.errors import PocsyncError
from pocsync.store.base import StoreBase
from pocsync.store.rows import utcnow

ANNOUNCED = ("announced_own_seq", "announced_own_by", "announced_own_at")


class SigningGuard(StoreBase):
    CONFIRMATION_GRAIN_MS = 1000  # a peer's confirmation of our head is recorded at most this often (per seq)

    def note_announced_own(self, seq: int, by: str, *, signed_ms: int | None = None) -> None:
        """A peer's verified head vector says it holds this node's chain up to ``seq`` (0: none of it).

        ``signed_ms`` (the vector's hlc time) records the confirmation the CLI's signing guard asks for
        (:meth:`own_head_confirmation`; ADR 19).  A signed head vector proves who speaks, not that the
        change-set exists: a claim above this node's head blocks signing for at most ANNOUNCED_OWN_TTL
        (the pull it triggers fetches the verified change-sets well within that); a claim that expires
        unproven makes this node disregard that announcer's claims until it is proven right (issue 11:
        nothing unverified blocks signing beyond a bounded time; :func:`pocsync.core.signing.record_announcement`)."""
        if signed_ms is not None and self._confirmation_unchanged(seq, by, signed_ms):
            # nothing to write (issue 13): no write transaction, no disk sync, for each head vector announced
            return
        with self.transaction():
            if signed_ms is not None and signed_ms >= int(self.get_meta("own_head_confirmed_ms") or 0):
                self.set_meta("own_head_confirmed_ms", str(signed_ms))
                self.set_meta("own_head_confirmed_by", by)
                self.set_meta("own_head_confirmed_seq", str(seq))
            restart, record = signing.record_announcement(self._own_head(), self._announcement(), seq, by)
            if restart:
                self.set_meta("announced_own_at", utcnow())
            if record:
                self.set_meta("announced_own_seq", str(seq))
                self.set_meta("announced_own_by", by)

    def own_head_confirmation(self) -> tuple[int, str, int] | None:
        """(signed at ms, by node, their view of this node's head seq) of the freshest peer head vector
        seen, or None when this store never saw one (never in contact with a peer)."""
        ms = self.get_meta("own_head_confirmed_ms")
        if ms is None:
            return None
        return int(ms), self.get_meta("own_head_confirmed_by") or "", int(self.get_meta("own_head_confirmed_seq") or 0)

    def _own_head(self) -> int:
        me = self.node_id
        m: int | None = self.conn.execute("SELECT max(seq) AS m FROM log WHERE origin=?", (me,)).fetchone()["m"]
        return m or 0

    def _distrusted(self) -> frozenset[str]:
        return frozenset(filter(None, (self.get_meta("announced_own_distrust") or "").split(",")))

    def _announcement(self) -> Announcement:
        return Announcement(
            int(self.get_meta("announced_own_seq") or 0),
            self.get_meta("announced_own_by"),
            self._announcement_age(),
            self._distrusted(),
        )

    def _announcement_age(self) -> timedelta:
        at = self.get_meta("announced_own_at")
        if not at:
            return timedelta(0)
        try:
            then = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return ANNOUNCED_OWN_TTL
        return datetime.now(UTC) - then

    def forget_announced_own(self) -> None:
        """What `recover` clears: a peer's unproven claim about this node's chain."""
        with self.transaction():
            for k in ANNOUNCED:
                self.set_meta(k, None)

    def signing_blocked(self) -> str | None:
        """Why this node must not sign, or None (the rules: :mod:`pocsync.core.signing`)."""
        me = self.node_id
        announcement = self._announcement()
        why, action = signing.announced_block(me, self._own_head(), announcement)
        if why is not None:
            return why
        if action is AnnouncementAction.DISTRUST:
            with self.transaction():
                by = announcement.by or "a peer"
                self.set_meta("announced_own_distrust", ",".join(sorted(self._distrusted() | {by})))
                for k in ANNOUNCED:
                    self.set_meta(k, None)
        elif action is AnnouncementAction.TRUST_ALL:
            self.set_meta("announced_own_distrust", None)
        reason = self.get_meta("signing_blocked")
        if reason is None:
            return None
        seg = self._next_segment(me)
        unverified = tuple(sorted(UNVERIFIED_PARK_REASONS))
        waiting = self.conn.execute(
            f"SELECT count(*) AS n FROM parked WHERE origin=? AND (seq IS NULL OR seq>=?) "
            f"AND reason NOT IN ({','.join('?' * len(unverified))})",
            (me, seg, *unverified),
        ).fetchone()["n"]
        proofs = self.conn.execute("SELECT count(*) AS n FROM proofs WHERE origin=? AND seq>=?", (me, seg)).fetchone()[
            "n"
        ]
        if not signing.noted_block_stands(waiting, proofs):
            self.set_meta("signing_blocked", None)
            return None
        return reason

    def _next_segment(self, me: str) -> int:
        """The first seq of the chain segment this node would sign next (0 when it cannot tell)."""
        m = self.manifest()
        if m is None or me not in m.nodes:
            return 0
        try:
            return m.nodes[me].segment(self.replica().next_position(me)[0]).seq
        except PocsyncError:
            return 0

    def _confirmation_unchanged(self, seq: int, by: str, signed_ms: int) -> bool:
        """True when note_announced_own would change nothing that matters: a peer confirmed the same seq less
        than CONFIRMATION_GRAIN_MS ago and the claim is not above our head (read-only check).  Which peer it
        was only names the confirmer in the signing guard's message: several peers confirming the same seq
        in turn write (and sync) once per grain, not once per head vector (issue 13)."""
        rows = dict(
            self.conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('own_head_confirmed_ms', 'own_head_confirmed_by',"
                " 'own_head_confirmed_seq')"
            ).fetchall()
        )
        ms = int(rows.get("own_head_confirmed_ms") or 0)
        if rows.get("own_head_confirmed_seq") != str(seq) or not rows.get("own_head_confirmed_by"):
            return False
        if not (ms <= signed_ms < ms + self.CONFIRMATION_GRAIN_MS):
            return False
        return seq <= self._own_head()
