"""Equivocation, in one place: PROTOCOL.md §11, its detection in §8 step 6, and ADR 37's held evidence.

* :func:`held_conflict` — §8 step 6: does the receiver hold another change-set with this (origin, seq)
  that passes steps 1–5 under its current manifest (in the log, parked after step 5, or kept as
  evidence)?  Then the two are a proof.
* :func:`keep_as_evidence` — ADR 37: a change-set refused by the chain rule is kept whole (bounded),
  so that the proofs a node finds are a function of the set of change-sets it received.
* :func:`check_proof` — §11: a proof is two change-sets that both verify, of one origin and seq, and differ.
* :func:`frozen_from` — §11 and §8.2 rule 1: from the fork on, the origin's chain segment has no effect.

Pure.  Verification is passed in (``verify``: PROTOCOL §8 steps 1–5, :func:`pocsync.core.acceptance.verify`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pocsync.core import changeset as csmod
from pocsync.core.changeset import ChangeSet
from pocsync.core.manifest import Manifest
from pocsync.core.outcome import Proof
from pocsync.errors import PocsyncError, ProtocolError

if TYPE_CHECKING:
    from pocsync.core.state import State

Verify = Callable[[bytes], ChangeSet]


def held_conflict(state: State, cs: ChangeSet, verify: Verify, *, max_bytes: int) -> bytes | None:
    """PROTOCOL §8 step 6: the envelope of another change-set this node holds at ``cs``'s (origin, seq)
    with another id that verifies now (the log's, else a parked or evidence one), or None."""
    if state.logged(cs.origin, cs.seq) is not None:
        return state.log_envelope(cs.origin, cs.seq)
    for data in state.verified_at(cs.origin, cs.seq):
        try:
            if csmod.peek_identity(data, max_bytes=max_bytes)[0] == cs.id:
                continue  # itself (released from parking)
            other = verify(data)
        except PocsyncError:
            continue
        if other.id != cs.id and (other.origin, other.seq) == (cs.origin, cs.seq):
            return data
    return None


def keep_as_evidence(state: State, cs: ChangeSet) -> None:
    """ADR 37: a verified change-set refused by the chain rule (``bad_prev``, ``prev_mismatch``,
    ``hlc_regression``) is kept whole, apart from the quarantine, as evidence for a later change-set
    at the same (origin, seq) (the state bounds it: MAX_EVIDENCE_PER_ORIGIN, the lowest seqs kept)."""
    state.keep_evidence(cs.id, cs.origin, cs.seq, cs.envelope)


def check_proof(proof: Proof, verify: Verify) -> None:
    """PROTOCOL §11: raise ``bad_proof`` unless both change-sets verify, share origin and seq, and differ."""
    a = verify(proof.a)
    b = verify(proof.b)
    if (a.origin, a.seq) != (b.origin, b.seq) or a.origin != proof.origin or a.seq != proof.seq:
        raise ProtocolError("proof change-sets do not share origin and seq", reason="bad_proof")
    if a.id == b.id:
        raise ProtocolError("proof holds the same change-set twice", reason="bad_proof")


def frozen_from(proofs: list[Proof], manifest: Manifest, origin: str, seq: int) -> int | None:
    """PROTOCOL §11: the fork seq of a proof in the chain segment holding ``seq``, if any (from it on,
    the origin's change-sets of that segment have no effect, §8.2 rule 1, and the origin may not sign)."""
    node = manifest.nodes.get(origin)
    if node is None:
        return None
    seg = node.segment(seq).seq
    forks = [p.seq for p in proofs if p.origin == origin and node.segment(p.seq).seq == seg]
    return min(forks) if forks else None


def frozen_message(origin: str, fork: int) -> tuple[str, str]:
    """The refusal of an op in a frozen segment (§8.2 rule 1)."""
    return "equivocation", f"{origin} equivocated at seq {fork}"
