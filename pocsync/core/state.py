"""The storage interface of one replica, and its in-memory implementation (ADR 1).

:class:`State` is all the core reads and writes; ``pocsync.store.SQLiteState`` implements it on
SQLite and :class:`MemoryState` in dicts (tests, in-memory federations), so both run the same rules.
"""

from __future__ import annotations

from typing import Protocol

from pocsync.core import held, opkinds
from pocsync.core.changeset import ChangeSet
from pocsync.core.merge import Assertion, view_digest
from pocsync.core.outcome import (
    MANIFEST_DEPENDENT,
    MAX_EVIDENCE_PER_ORIGIN,
    MAX_PARKED_BYTES_PER_ORIGIN,
    MAX_PARKED_PER_ORIGIN,
    MAX_UNVERIFIED_PARKED,
    MAX_UNVERIFIED_PARKED_PER_ORIGIN,
    QUARANTINE_HEAD_BYTES,
    UNVERIFIED_PARK_REASONS,
    Head,
    Proof,
    Refusal,
)


class State(Protocol):
    """Storage of one replica.  Implementations: MemoryState, pocsync.store.SQLiteState."""

    # log of accepted change-sets
    def logged(self, origin: str, seq: int) -> Head | None: ...
    def log_envelope(self, origin: str, seq: int) -> bytes | None: ...
    def append(self, cs: ChangeSet) -> None: ...
    def heads(self) -> dict[str, Head]: ...
    def max_hlc(self) -> str | None: ...
    def all_log(self) -> list[bytes]: ...
    # parked and quarantined
    def park(self, cs_id: str, origin: str | None, seq: int | None, data: bytes, reason: str, message: str) -> None: ...
    def parked_for(self, origin: str, seq: int) -> list[bytes]: ...
    def all_parked(self, reason: str | None = None) -> list[bytes]: ...
    def unpark(self, cs_id: str) -> None: ...
    # verified change-sets not in the log, kept as evidence for §8 step 6 / §11 (never a log position)
    def keep_evidence(self, cs_id: str, origin: str, seq: int, data: bytes) -> None: ...  # refused by chain checks
    def verified_at(self, origin: str, seq: int) -> list[bytes]: ...  # verified parked + evidence, by id
    def quarantine(self, data: bytes, reason: str, message: str, source: str) -> None: ...
    def take_quarantined(self, reasons: frozenset[str]) -> list[bytes]: ...
    # equivocation proofs
    def proofs(self) -> list[Proof]: ...
    def add_proof(self, proof: Proof) -> bool: ...
    # derived
    def latest(self, origin: str, key: str) -> Assertion | None: ...
    def latest_for_key(self, key: str) -> list[Assertion]: ...
    def latest_rank(self, origin: str, key: str) -> tuple[int, int] | None: ...  # (seq, index) of latest()
    def set_latest(self, a: Assertion) -> None: ...
    def note_death(self, key: str, hlc: str) -> None: ...  # an applied delete/withdraw: greatest hlc per key
    def withdrawal(self, key: str) -> Assertion | None: ...
    def set_withdrawal(self, a: Assertion) -> None: ...
    def winner(self, key: str) -> Assertion | None: ...
    def set_winner(self, key: str, a: Assertion | None) -> None: ...
    def refuse(self, r: Refusal) -> None: ...
    # effects in namespaces other than ``entry`` (PROTOCOL.md §8.2): the winning op per (namespace, key)
    def record(self, namespace: str, key: str) -> Assertion | None: ...
    def set_record(self, namespace: str, key: str, a: Assertion) -> None: ...
    def reset(self) -> None: ...  # empty the log, parked and every derived table (not quarantine/proofs)
    # held contact changes (PROTOCOL.md §16), kept only while the feature is on: every entry op and hold op
    # of a key, and the key's held puts (derived)
    def history(self, key: str) -> list[Assertion]: ...
    def add_history(self, a: Assertion) -> None: ...
    def holds(self, key: str) -> list[Assertion]: ...
    def add_hold(self, a: Assertion) -> None: ...
    def replace_latest(self, key: str, latest: dict[str, Assertion]) -> None: ...
    def set_held(self, key: str, rows: list[held.Held]) -> None: ...


class MemoryState:
    """All of a replica's state in dicts."""

    def __init__(self) -> None:
        self.log: dict[tuple[str, int], ChangeSet] = {}
        self.parked: dict[str, tuple[str | None, int | None, bytes, str, str]] = {}
        self.quarantined: list[tuple[bytes, str, str, str]] = []
        self._proofs: dict[tuple[str, int, frozenset[bytes]], Proof] = {}
        self.latest_: dict[tuple[str, str], Assertion] = {}
        self.withdrawals: dict[str, Assertion] = {}
        self.winners: dict[str, Assertion] = {}
        self.refusals: dict[tuple[str, int], Refusal] = {}
        self.records: dict[tuple[str, str], Assertion] = {}
        self.deaths: dict[str, str] = {}  # key -> greatest hlc of an applied delete or withdrawal
        self.history_: dict[str, dict[str, Assertion]] = {}  # key -> ref -> entry op (held-changes on)
        self.holds_: dict[str, dict[str, Assertion]] = {}  # key -> ref -> hold op
        self.held_: dict[str, list[held.Held]] = {}
        self.evidence: dict[str, tuple[str, int, bytes]] = {}  # id -> (origin, seq, envelope); kept across reset()

    def logged(self, origin: str, seq: int) -> Head | None:
        cs = self.log.get((origin, seq))
        return Head(cs.seq, cs.id, cs.hlc) if cs else None

    def log_envelope(self, origin: str, seq: int) -> bytes | None:
        cs = self.log.get((origin, seq))
        return cs.envelope if cs else None

    def append(self, cs: ChangeSet) -> None:
        self.log[(cs.origin, cs.seq)] = cs

    def heads(self) -> dict[str, Head]:
        out: dict[str, Head] = {}
        for (origin, seq), cs in self.log.items():
            if origin not in out or seq > out[origin].seq:
                out[origin] = Head(cs.seq, cs.id, cs.hlc)
        return out

    def max_hlc(self) -> str | None:
        return max((cs.hlc for cs in self.log.values()), default=None)

    def all_log(self) -> list[bytes]:
        return [self.log[k].envelope for k in sorted(self.log)]

    def park(self, cs_id, origin, seq, data, reason, message) -> None:  # type: ignore[no-untyped-def]
        self.parked[cs_id] = (origin, seq, data, reason, message)
        if reason in UNVERIFIED_PARK_REASONS:  # bounded like the store's (no clock here: no expiry)
            self._parked_order = [i for i in getattr(self, "_parked_order", []) if i in self.parked and i != cs_id]
            self._parked_order.append(cs_id)
            while True:
                unv = [i for i in self._parked_order if self.parked[i][3] in UNVERIFIED_PARK_REASONS]
                same = [i for i in unv if self.parked[i][0] == origin]
                if len(same) > MAX_UNVERIFIED_PARKED_PER_ORIGIN:
                    victim = same[0]
                elif len(unv) > MAX_UNVERIFIED_PARKED:
                    victim = unv[0]
                else:
                    break
                self.parked.pop(victim, None)
                self._parked_order.remove(victim)
        else:  # verified: bounded per origin, the seqs nearest the head kept (as the store does)
            mine = sorted(
                (p[1] or 0, i, len(p[2]))
                for i, p in self.parked.items()
                if p[0] == origin and p[3] not in UNVERIFIED_PARK_REASONS
            )
            size = 0
            for n, (_, i, length) in enumerate(mine, start=1):
                size += length
                if n > MAX_PARKED_PER_ORIGIN or size > MAX_PARKED_BYTES_PER_ORIGIN:
                    self.parked.pop(i, None)

    def parked_for(self, origin: str, seq: int) -> list[bytes]:
        return [p[2] for _, p in sorted(self.parked.items()) if p[0] == origin and p[1] == seq]

    def all_parked(self, reason: str | None = None) -> list[bytes]:
        return [p[2] for _, p in sorted(self.parked.items()) if reason is None or p[3] == reason]

    def unpark(self, cs_id: str) -> None:
        self.parked.pop(cs_id, None)

    def keep_evidence(self, cs_id: str, origin: str, seq: int, data: bytes) -> None:
        self.evidence[cs_id] = (origin, seq, data)
        mine = sorted((h[1], i) for i, h in self.evidence.items() if h[0] == origin)
        for _, i in mine[MAX_EVIDENCE_PER_ORIGIN:]:  # the lowest seqs are kept (as the store does)
            del self.evidence[i]

    def verified_at(self, origin: str, seq: int) -> list[bytes]:
        parked = [
            (i, p[2])
            for i, p in self.parked.items()
            if p[0] == origin and p[1] == seq and p[3] not in UNVERIFIED_PARK_REASONS
        ]
        kept = [(i, h[2]) for i, h in self.evidence.items() if h[0] == origin and h[1] == seq]
        return [d for _, d in sorted(parked + kept)]

    def quarantine(self, data: bytes, reason: str, message: str, source: str) -> None:
        keep = data if reason in MANIFEST_DEPENDENT else data[:QUARANTINE_HEAD_BYTES]
        self.quarantined.append((keep, reason, message, source))

    def take_quarantined(self, reasons: frozenset[str]) -> list[bytes]:
        taken = [q[0] for q in self.quarantined if q[1] in reasons]
        self.quarantined = [q for q in self.quarantined if q[1] not in reasons]
        return taken

    def proofs(self) -> list[Proof]:
        return list(self._proofs.values())

    def add_proof(self, proof: Proof) -> bool:
        k = (proof.origin, proof.seq, frozenset((proof.a, proof.b)))
        if k in self._proofs:
            return False
        self._proofs[k] = proof
        return True

    def latest(self, origin: str, key: str) -> Assertion | None:
        return self.latest_.get((origin, key))

    def latest_for_key(self, key: str) -> list[Assertion]:
        return [a for (o, k), a in self.latest_.items() if k == key]

    def latest_rank(self, origin: str, key: str) -> tuple[int, int] | None:
        a = self.latest_.get((origin, key))
        return (a.seq, a.index) if a is not None else None

    def set_latest(self, a: Assertion) -> None:
        self.latest_[(a.origin, a.key)] = a

    def note_death(self, key: str, hlc: str) -> None:
        self.deaths[key] = max(self.deaths.get(key, hlc), hlc)

    def withdrawal(self, key: str) -> Assertion | None:
        return self.withdrawals.get(key)

    def set_withdrawal(self, a: Assertion) -> None:
        self.withdrawals[a.key] = a

    def winner(self, key: str) -> Assertion | None:
        return self.winners.get(key)

    def set_winner(self, key: str, a: Assertion | None) -> None:
        if a is None:
            self.winners.pop(key, None)
        else:
            self.winners[key] = a

    def refuse(self, r: Refusal) -> None:
        self.refusals[(r.cs_id, r.index)] = r

    def record(self, namespace: str, key: str) -> Assertion | None:
        return self.records.get((namespace, key))

    def set_record(self, namespace: str, key: str, a: Assertion) -> None:
        self.records[(namespace, key)] = a

    def history(self, key: str) -> list[Assertion]:
        return list(self.history_.get(key, {}).values())

    def add_history(self, a: Assertion) -> None:
        self.history_.setdefault(a.key, {})[a.ref] = a

    def holds(self, key: str) -> list[Assertion]:
        return list(self.holds_.get(key, {}).values())

    def add_hold(self, a: Assertion) -> None:
        self.holds_.setdefault(a.key, {})[a.ref] = a

    def replace_latest(self, key: str, latest: dict[str, Assertion]) -> None:
        for k in [k for k in self.latest_ if k[1] == key]:
            del self.latest_[k]
        for origin, a in latest.items():
            self.latest_[(origin, key)] = a

    def set_held(self, key: str, rows: list[held.Held]) -> None:
        if rows:
            self.held_[key] = list(rows)
        else:
            self.held_.pop(key, None)

    def reset(self) -> None:
        self.history_.clear()
        self.holds_.clear()
        self.held_.clear()
        self.records.clear()
        self.log.clear()
        self.parked.clear()
        self.latest_.clear()
        self.withdrawals.clear()
        self.winners.clear()
        self.refusals.clear()
        self.deaths.clear()

    def view_refs(self) -> list[tuple[str, str]]:
        """(key, ref) of the entries in the view."""
        return [(k, a.ref) for k, a in self.winners.items()]

    def digest_view(self) -> list[tuple[str, str, str]]:
        """(namespace, key, ref) of every digest line (PROTOCOL.md §9)."""
        return (
            [(opkinds.ENTRY, k, a.ref) for k, a in self.winners.items()]
            + [(ns, k, a.ref) for (ns, k), a in self.records.items()]
            + [line for rows in self.held_.values() for h in rows for line in h.lines()]
        )

    def digest(self) -> str:
        return view_digest(self.digest_view())
