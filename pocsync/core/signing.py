"""The signing guard: when a node must not sign (PROTOCOL.md §11, ADR 14, ADR 19).  Pure.

A node never signs a seq it may have signed before.  It refuses while a peer's fresh announcement
says it holds more of the node's own chain than its log holds (for at most ANNOUNCED_OWN_TTL), while
its own *verified* change-sets wait in the parking lot, or while a proof of its equivocation stands in
the chain segment it would sign next.  The store keeps the facts (``meta`` rows, counts); these
functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from pocsync.core.outcome import UNVERIFIED_PARK_REASONS, Outcome, Status

ANNOUNCED_OWN_TTL = timedelta(minutes=10)  # how long a peer's unproven claim about our chain blocks signing


def own_claim(outcomes: Iterable[Outcome], me: str | None) -> str | None:
    """Why seeing these outcomes of our own origin's change-sets from elsewhere blocks signing, or None.

    Only verified claims count: an equivocation, or a verified change-set of ours parked for a gap (an
    unverifiable parked item is anybody's word, issue 11 case 1; ``clock_skew`` is our own clock's)."""
    reason = None
    for o in outcomes:
        verified = o.status == Status.EQUIVOCATION or (
            o.status == Status.PARKED and o.reason not in UNVERIFIED_PARK_REASONS and o.reason != "clock_skew"
        )
        if o.origin == me and verified:
            reason = f"peers hold {me} seq {o.seq} that this store lacks or disagrees with ({o.reason})"
    return reason


def moves_own_chain(outcomes: Iterable[Outcome], me: str | None) -> bool:
    """Whether these outcomes accepted change-sets of this node's own chain or block its signing
    (:func:`own_claim`): such a receipt is committed durably even from a peer (ADR 42), since the signing
    guard reads the node's own head and blocks from the store, and a head that went back could sign a seq
    again.  Unverified items claiming to be ours do not count (anybody's word: no disk sync on demand)."""
    outcomes = list(outcomes)
    return any(o.origin == me and o.status == Status.ACCEPTED for o in outcomes) or own_claim(outcomes, me) is not None


@dataclass(frozen=True)
class Announcement:
    """A peer's claim of how far this node's chain goes (from verified head vectors), as the store keeps it."""

    seq: int  # 0: none
    by: str | None
    age: timedelta
    distrusted: frozenset[str]  # announcers whose claims expired unproven


class AnnouncementAction(Enum):
    KEEP = "keep"  # nothing to change
    DISTRUST = "distrust"  # unproven in time: forget the claim and disregard this announcer until proven right
    TRUST_ALL = "trust_all"  # our log caught up: every announcer is believed again


def announced_block(me: str, own_head: int, a: Announcement) -> tuple[str | None, AnnouncementAction]:
    """Whether a peer's announcement blocks signing (the reason), and what the store must change."""
    if a.seq > own_head:
        if a.age < ANNOUNCED_OWN_TTL:
            return (
                f"{a.by or 'a peer'} holds {me} seq {a.seq} but this store ends at seq {own_head}",
                AnnouncementAction.KEEP,
            )
        return None, AnnouncementAction.DISTRUST
    if a.seq and a.distrusted:
        return None, AnnouncementAction.TRUST_ALL
    return None, AnnouncementAction.KEEP


def record_announcement(own_head: int, current: Announcement, seq: int, by: str) -> tuple[bool, bool]:
    """A peer ``by`` announces it holds our chain up to ``seq``: (restart the claim's clock, record the claim).

    A claim by a distrusted announcer, or not above our head, changes nothing; a claim that is not
    active (none, or expired) starts anew; an active one is raised by a higher claim."""
    if by in current.distrusted or seq <= own_head:
        return False, False
    active = current.seq > own_head and current.age < ANNOUNCED_OWN_TTL
    return not active, not active or seq > current.seq


def noted_block_stands(waiting_parked: int, proofs: int) -> bool:
    """A noted block (:func:`own_claim`) stands while, in the chain segment this node would sign next, its
    own verified change-sets are parked or a proof of its equivocation stands (a chain restart ends it)."""
    return waiting_parked > 0 or proofs > 0
