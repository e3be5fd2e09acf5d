"""The signing guard's rules are pure functions of the core (pocsync.core.signing); the store keeps the facts."""

from __future__ import annotations

from datetime import timedelta

from pocsync.core.outcome import Outcome, Status
from pocsync.core.signing import (
    ANNOUNCED_OWN_TTL,
    Announcement,
    AnnouncementAction,
    announced_block,
    noted_block_stands,
    own_claim,
    record_announcement,
)

NONE = Announcement(0, None, timedelta(0), frozenset())


def test_only_verified_claims_about_our_own_chain_block() -> None:
    gap = Outcome(Status.PARKED, "gap", "", "sha256:x", "eu", 7)
    assert own_claim([gap], "eu") == "peers hold eu seq 7 that this store lacks or disagrees with (gap)"
    assert own_claim([gap], "osce") is None
    for reason in ("manifest_unknown", "clock_skew"):  # anybody's word, or our own clock
        assert own_claim([Outcome(Status.PARKED, reason, "", "sha256:x", "eu", 7)], "eu") is None
    assert own_claim([Outcome(Status.EQUIVOCATION, "equivocation", "", "sha256:x", "eu", 3)], "eu") is not None
    assert own_claim([Outcome(Status.ACCEPTED, "", "", "sha256:x", "eu", 3)], "eu") is None


def test_an_announcement_blocks_for_a_bounded_time_then_its_announcer_is_distrusted() -> None:
    fresh = Announcement(5, "osce", timedelta(seconds=1), frozenset())
    why, action = announced_block("eu", 3, fresh)
    assert why == "osce holds eu seq 5 but this store ends at seq 3" and action is AnnouncementAction.KEEP
    stale = Announcement(5, "osce", ANNOUNCED_OWN_TTL, frozenset())
    assert announced_block("eu", 3, stale) == (None, AnnouncementAction.DISTRUST)
    proven = Announcement(5, "osce", ANNOUNCED_OWN_TTL, frozenset({"un"}))
    assert announced_block("eu", 5, proven) == (None, AnnouncementAction.TRUST_ALL)
    assert announced_block("eu", 0, NONE) == (None, AnnouncementAction.KEEP)


def test_recording_an_announcement() -> None:
    assert record_announcement(3, NONE, 5, "osce") == (True, True)  # a new claim starts its clock
    assert record_announcement(5, NONE, 5, "osce") == (False, False)  # not above our head
    assert record_announcement(3, Announcement(0, None, timedelta(0), frozenset({"osce"})), 9, "osce") == (False, False)
    active = Announcement(6, "un", timedelta(seconds=1), frozenset())
    assert record_announcement(3, active, 9, "osce") == (False, True)  # raised, same clock
    assert record_announcement(3, active, 4, "osce") == (False, False)
    assert noted_block_stands(0, 0) is False and noted_block_stands(1, 0) and noted_block_stands(0, 1)
