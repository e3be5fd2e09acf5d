"""The typed values the core's acceptance returns, and its named limits (PROTOCOL.md §8, §8.1).

An :class:`Outcome` says what became of one change-set envelope; its ``status`` is a
:class:`Status` (a ``str`` enum, so ``out.status == "accepted"`` and ``f"{out.status}"`` keep
working for callers that log or count it).  Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What became of one change-set (PROTOCOL.md §8.1: accepted, parked, quarantined, other outcomes)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    PARKED = "parked"
    QUARANTINED = "quarantined"
    EQUIVOCATION = "equivocation"


# Outcomes of a change-set that did not take effect (``log import`` lists them).
NOT_APPLIED = frozenset({Status.PARKED, Status.QUARANTINED, Status.EQUIVOCATION})


@dataclass(frozen=True)
class Limits:
    """Every limit of the core, named (sync.toml ``[limits]``)."""

    max_envelope_bytes: int = 256 * 1024
    max_clock_skew_ms: int = 300_000
    # unverified parked change-sets (MANIFEST_DEPENDENT below): per claimed origin, in all, in bytes
    max_parked_per_origin: int = 32
    max_parked: int = 256
    max_parked_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class Head:
    seq: int
    id: str
    hlc: str


@dataclass(frozen=True)
class Refusal:
    cs_id: str
    index: int
    origin: str
    seq: int
    key: str
    op: str
    reason: str
    message: str


@dataclass(frozen=True)
class Proof:
    """Two valid change-sets of one origin with the same seq: proof of equivocation (PROTOCOL.md §11)."""

    origin: str
    seq: int
    a: bytes
    b: bytes


@dataclass
class Outcome:
    status: Status
    reason: str = ""
    message: str = ""
    cs_id: str | None = None
    origin: str | None = None
    seq: int | None = None
    refused: list[Refusal] = field(default_factory=list)
    also_accepted: list[Outcome] = field(default_factory=list)  # parked ones this one released

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "reason": self.reason,
            "message": self.message,
            "id": self.cs_id,
            "origin": self.origin,
            "seq": self.seq,
        }


# Quarantine reasons that depend on which keys the manifest lists: retried when it changes,
# so that every node judges a change-set by the same (current) manifest.
MANIFEST_DEPENDENT = frozenset({"unknown_key", "key_out_of_range", "bad_signature", "key_not_of_origin"})

# Parking reasons whose item has NOT verified (its signature could not be checked yet).  Such items are
# claims by anybody: they are bounded per claimed origin and in total, expire, and never count as
# evidence of anything (the signing guard ignores them).  HTTP pull by head vectors fetches again
# whatever an eviction dropped, so the bound loses nothing that a verified peer still holds.
UNVERIFIED_PARK_REASONS = frozenset({"manifest_unknown"})
# Their defaults (sync.toml [limits] max_parked_per_origin, max_parked, max_parked_bytes).
MAX_UNVERIFIED_PARKED_PER_ORIGIN = Limits.max_parked_per_origin
MAX_UNVERIFIED_PARKED = Limits.max_parked
MAX_UNVERIFIED_PARKED_BYTES = Limits.max_parked_bytes
# Verified parked items (``gap``, ``clock_skew``) are a member's signed word that its chain goes on: a
# member can sign as many seqs past its head as it likes, so they are bounded per origin too; the ones
# farthest from the head go first (a pull fetches them again from a peer that logged them).
MAX_PARKED_PER_ORIGIN = 512
MAX_PARKED_BYTES_PER_ORIGIN = 32 * 1024 * 1024
# Verified change-sets refused by the chain checks (bad_prev, prev_mismatch, hlc_regression) are kept whole,
# apart from the quarantine, so that a second change-set at the same (origin, seq) still makes a proof (§8 step
# 6, §11): the proofs a node finds are then those of the set of change-sets it received, in any order.
MAX_EVIDENCE_PER_ORIGIN = 64
# What the quarantine keeps of an item it will never retry: its hash, size, reason and first bytes.
QUARANTINE_HEAD_BYTES = 512
