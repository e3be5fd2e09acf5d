"""The replica: acceptance, effects, equivocation and merge over a state (DESIGN §5).

``Replica`` is the whole protocol logic of one node, pure: it reads and writes
through a small :class:`State` interface and never touches a disk, a socket or a
clock (``now_ms`` is a parameter).  :class:`MemoryState` keeps everything in
dicts (tests, in-memory federations); ``pocsync.store`` implements the same
interface on SQLite, so both run exactly the same rules.

The merged view is a function of the set of accepted change-sets, the equivocation
proofs and the current manifest: :meth:`Replica.reevaluate` re-derives it from the
log whenever the manifest or the proofs change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import changeset as csmod
from pocsync.core import hlc as hlcmod
from pocsync.core import held, model, opkinds
from pocsync.core.changeset import ChangeSet
from pocsync.core.keys import ed25519_public_b64
from pocsync.core.manifest import Manifest
from pocsync.core.merge import Assertion, greater, greater_withdrawal, view_digest, winner
from pocsync.errors import EntryError, Parked, PocsyncError, ProtocolError, SigningRefused


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
    """Two valid change-sets of one origin with the same seq: proof of equivocation."""

    origin: str
    seq: int
    a: bytes
    b: bytes


@dataclass
class Outcome:
    status: str  # accepted | duplicate | parked | quarantined | equivocation
    reason: str = ""
    message: str = ""
    cs_id: str | None = None
    origin: str | None = None
    seq: int | None = None
    refused: list[Refusal] = field(default_factory=list)
    also_accepted: list["Outcome"] = field(default_factory=list)  # parked ones this one released

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "message": self.message, "id": self.cs_id,
                "origin": self.origin, "seq": self.seq}


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


class Replica:
    def __init__(self, state: State, manifest: Manifest, *, limits: Limits = Limits()) -> None:
        self.state = state
        self.manifest = manifest
        self.limits = limits

    # --- receiving --------------------------------------------------------------
    def receive(self, data: bytes, *, now_ms: int, source: str = "local") -> Outcome:
        """Apply one envelope by the acceptance and effect rules; release parked successors."""
        out = self._receive_one(data, now_ms=now_ms, source=source)
        if out.status == "accepted":
            pending = [(out.origin, out.seq)]
            while pending:
                origin, seq = pending.pop()
                for nxt in self.state.parked_for(origin, seq + 1):  # type: ignore[arg-type]
                    sub = self._receive_one(nxt, now_ms=now_ms, source="parked")
                    if sub.status == "accepted":
                        out.also_accepted.append(sub)
                        pending.append((sub.origin, sub.seq))
        return out

    def _receive_one(self, data: bytes, *, now_ms: int, source: str) -> Outcome:
        st = self.state
        try:
            cs_id, p_origin, p_seq = csmod.peek_identity(data, max_bytes=self.limits.max_envelope_bytes)
        except ProtocolError as exc:  # the store keeps a hash, the size and the first bytes only
            st.quarantine(data, exc.reason, exc.message, source)
            return Outcome("quarantined", exc.reason, exc.message)
        if p_origin is not None and p_seq is not None:
            have = st.logged(p_origin, p_seq)
            if have is not None and have.id == cs_id:
                st.unpark(cs_id)
                return Outcome("duplicate", "duplicate", "already in the log", cs_id, p_origin, p_seq)
        try:
            cs = csmod.verify(data, self.manifest, max_bytes=self.limits.max_envelope_bytes)
        except Parked as exc:
            st.park(cs_id, p_origin, p_seq, data, exc.reason, exc.message)
            return Outcome("parked", exc.reason, exc.message, cs_id, p_origin, p_seq)
        except PocsyncError as exc:
            st.unpark(cs_id)
            st.quarantine(data, exc.reason, exc.message, source)
            return Outcome("quarantined", exc.reason, exc.message, cs_id, p_origin, p_seq)
        return self._chain(cs, now_ms=now_ms, source=source)

    def _chain(self, cs: ChangeSet, *, now_ms: int, source: str) -> Outcome:
        st = self.state
        node = self.manifest.nodes[cs.origin]
        existing = st.logged(cs.origin, cs.seq)
        # §8 step 6: another verified change-set with this (origin, seq) that this node holds — in the log,
        # parked after verification or refused by the chain checks — and a proof of equivocation results
        other = st.log_envelope(cs.origin, cs.seq) if existing is not None else self._other_verified(cs)
        if other is not None:  # same (origin, seq), other id: a proof of equivocation
            st.unpark(cs.id)
            self.add_proof(Proof(cs.origin, cs.seq, other, cs.envelope), now_ms=now_ms)
            return Outcome("equivocation", "equivocation",
                           f"{cs.origin} signed two change-sets with seq {cs.seq}", cs.id, cs.origin, cs.seq)
        seg = node.segment(cs.seq)

        def reject(reason: str, message: str) -> Outcome:
            st.unpark(cs.id)
            st.keep_evidence(cs.id, cs.origin, cs.seq, cs.envelope)  # evidence for a later change-set at this seq
            st.quarantine(cs.envelope, reason, message, source)
            return Outcome("quarantined", reason, message, cs.id, cs.origin, cs.seq)

        if cs.seq == seg.seq:
            if cs.prev != seg.prev:
                return reject("bad_prev", f"seq {cs.seq} starts a chain segment; prev must be {seg.prev!r}")
        else:
            pred = st.logged(cs.origin, cs.seq - 1)
            if pred is None:
                st.park(cs.id, cs.origin, cs.seq, cs.envelope, "gap", f"waiting for {cs.origin} seq {cs.seq - 1}")
                return Outcome("parked", "gap", f"waiting for {cs.origin} seq {cs.seq - 1}", cs.id, cs.origin, cs.seq)
            if cs.prev != pred.id:
                return reject("prev_mismatch", f"prev does not match {cs.origin} seq {cs.seq - 1} ({pred.id})")
            if cs.hlc < pred.hlc:
                return reject("hlc_regression", f"hlc {cs.hlc} is below the previous {pred.hlc}")
        if hlcmod.ahead_of_wall(cs.hlc, now_ms, self.limits.max_clock_skew_ms):
            msg = f"hlc {cs.hlc} is more than {self.limits.max_clock_skew_ms // 1000} s ahead of this clock"
            st.park(cs.id, cs.origin, cs.seq, cs.envelope, "clock_skew", msg)
            return Outcome("parked", "clock_skew", msg, cs.id, cs.origin, cs.seq)
        st.unpark(cs.id)
        st.append(cs)
        refused = self._apply(cs)
        return Outcome("accepted", "", "", cs.id, cs.origin, cs.seq, refused)

    def _other_verified(self, cs: ChangeSet) -> bytes | None:
        """A change-set held outside the log at ``cs``'s (origin, seq), with another id, that verifies now."""
        for data in self.state.verified_at(cs.origin, cs.seq):
            try:
                if csmod.peek_identity(data, max_bytes=self.limits.max_envelope_bytes)[0] == cs.id:
                    continue  # itself (released from parking)
                other = csmod.verify(data, self.manifest, max_bytes=self.limits.max_envelope_bytes)
            except PocsyncError:
                continue
            if other.id != cs.id and (other.origin, other.seq) == (cs.origin, cs.seq):
                return data
        return None

    # --- effects ----------------------------------------------------------------
    def _frozen_from(self, origin: str, seq: int) -> int | None:
        """The fork seq of a proof in the chain segment holding ``seq``, if any."""
        node = self.manifest.nodes.get(origin)
        if node is None:
            return None
        seg = node.segment(seq).seq
        forks = [p.seq for p in self.state.proofs() if p.origin == origin and node.segment(p.seq).seq == seg]
        return min(forks) if forks else None

    def op_refusal(self, op: csmod.Op | dict[str, Any], *, origin: str, seq: int,
                   hlc: str) -> tuple[str, str] | None:
        """The (reason, message) refusing ``op`` signed by ``origin`` at ``seq`` with ``hlc``, or None.

        The receipt rules of PROTOCOL.md §8.2, in order: op kind known (``unknown_op``), its
        feature listed by the current manifest (``feature_off``), key of the kind's namespace
        (``bad_key``), State in the origin's scope at ``seq`` (``out_of_scope``), then the
        kind's own rules (for ``put``: :func:`pocsync.core.model.check_structure`).  An origin
        calls this before signing with the position it is about to sign; receivers call it
        for every op of an accepted change-set.  Not covered here: the equivocation freeze.
        """
        raw = op.raw if isinstance(op, csmod.Op) else op
        node = self.manifest.nodes.get(origin)
        if node is None:
            return "unknown_origin", f"{origin!r} is not a node of manifest v{self.manifest.version}"
        why = opkinds.refusal(raw, features=self.manifest.features, policy=self.manifest.policy, cs_hlc=hlc,
                              covers=lambda state: node.covers(state, seq), origin=origin,
                              role_of=lambda nid: n.role if (n := self.manifest.nodes.get(nid)) else None)
        if why is not None and why[0] == "out_of_scope":
            return why[0], why[1].replace("the origin's scope", f"the scope of {origin} at seq {seq}")
        return why

    def _apply(self, cs: ChangeSet) -> list[Refusal]:
        st = self.state
        fork = self._frozen_from(cs.origin, cs.seq)
        hpol = held.policy_of(self.manifest)
        refused: list[Refusal] = []
        touched: set[str] = set()
        for op in cs.ops:
            why = ("equivocation", f"{cs.origin} equivocated at seq {fork}") if fork is not None and cs.seq >= fork \
                else self.op_refusal(op, origin=cs.origin, seq=cs.seq, hlc=cs.hlc)
            if why is not None:
                r = Refusal(cs.id, op.index, cs.origin, cs.seq, op.key, op.op, why[0], why[1])
                st.refuse(r)
                refused.append(r)
                continue
            kind = opkinds.KINDS[op.op]
            if kind.namespace == held.NAMESPACE:  # a hold op: the key's held puts are re-derived below
                st.add_hold(Assertion(op.key, cs.origin, op.op, cs.hlc, cs.id, op.index, cs.seq, cs.author,
                                      dict(op.raw)))
                touched.add(op.key)
                continue
            if kind.namespace != opkinds.ENTRY:  # last-writer-wins registers, one digest line each (§9)
                for namespace, rkey in kind.records_of(op.raw):
                    a = Assertion(rkey, cs.origin, op.op, cs.hlc, cs.id, op.index, cs.seq, cs.author, dict(op.raw))
                    st.set_record(namespace, rkey, greater(st.record(namespace, rkey), a, kind.rank))
                continue
            a = Assertion(op.key, cs.origin, op.op, cs.hlc, cs.id, op.index, cs.seq, cs.author,
                          op.entry if op.op == "put" else None)
            if hpol is not None:
                st.add_history(a)
            prior = None if hpol is not None else st.latest_rank(cs.origin, op.key)
            # The latest assertion is the greatest (seq, index), whatever the order of application: after a
            # chain restart a later segment can be applied before an earlier one arrives.
            if hpol is None and (prior is None or (a.seq, a.index) > prior):
                st.set_latest(a)
            if op.op in ("delete", "withdraw"):  # every applied death counts, latest or not: order-free
                st.note_death(op.key, cs.hlc)
            if op.op == "withdraw":
                st.set_withdrawal(greater_withdrawal(st.withdrawal(op.key), a))
            touched.add(op.key)
        for key in sorted(touched):
            if hpol is not None:  # held changes: sweep the key's whole history (PROTOCOL.md §16.3)
                res = held.evaluate(st.history(key), st.holds(key), hpol)
                st.replace_latest(key, res.latest)
                st.set_winner(key, res.winner)
                st.set_held(key, res.held)
                continue
            w = winner(st.latest_for_key(key), st.withdrawal(key))
            st.set_winner(key, w if w is not None and w.op == "put" else None)
        return refused

    # --- equivocation and re-evaluation -----------------------------------------
    def check_proof(self, proof: Proof) -> None:
        """Raise unless both change-sets verify, share origin and seq, and differ."""
        a = csmod.verify(proof.a, self.manifest, max_bytes=self.limits.max_envelope_bytes)
        b = csmod.verify(proof.b, self.manifest, max_bytes=self.limits.max_envelope_bytes)
        if (a.origin, a.seq) != (b.origin, b.seq) or a.origin != proof.origin or a.seq != proof.seq:
            raise ProtocolError("proof change-sets do not share origin and seq", reason="bad_proof")
        if a.id == b.id:
            raise ProtocolError("proof holds the same change-set twice", reason="bad_proof")

    def add_proof(self, proof: Proof, *, now_ms: int) -> bool:
        """Record a verified proof; re-derive the view when it is new."""
        self.check_proof(proof)
        if self.state.add_proof(proof):
            self.reevaluate(now_ms=now_ms)
            return True
        return False

    def reevaluate(self, *, now_ms: int, manifest: Manifest | None = None) -> list[Outcome]:
        """Re-derive everything from the log and the parked change-sets (new manifest or proof)."""
        if manifest is not None:
            self.manifest = manifest
        candidates = (self.state.all_log() + self.state.all_parked()
                      + self.state.take_quarantined(MANIFEST_DEPENDENT))
        self.state.reset()
        outcomes = []
        for data in candidates:
            out = self.receive(data, now_ms=now_ms, source="reevaluate")
            outcomes.append(out)
            outcomes.extend(out.also_accepted)
        return outcomes

    def retry_parked(self, *, now_ms: int, reason: str | None = None) -> list[Outcome]:
        outs = []
        for data in self.state.all_parked(reason):
            out = self.receive(data, now_ms=now_ms, source="parked")
            outs.append(out)
            outs.extend(out.also_accepted)
        return outs

    # --- local edits (origin side) ------------------------------------------------
    def next_position(self, me: str) -> tuple[int, str | None]:
        """(seq, prev) for the next change-set this node signs."""
        node = self.manifest.nodes.get(me)
        if node is None:
            raise SigningRefused(f"node {me!r} is not in manifest v{self.manifest.version}")
        head = self.state.heads().get(me)
        seq = head.seq + 1 if head else 1
        later = [r.seq for r in node.restarts if r.seq >= seq]
        if later:
            seq = max(later)
        seg = node.segment(seq)
        if seq == seg.seq:
            return seq, seg.prev
        if head is None or head.seq != seq - 1:
            raise SigningRefused(f"the log of {me} is missing seq {seq - 1}; recover it from peers first")
        return seq, head.id

    def edit(self, ops: list[dict[str, Any]], *, me: str, key: Ed25519PrivateKey, author: str,
             now_ms: int) -> Outcome:
        """Sign one change-set of ``ops`` at the next seq and apply it.

        Raises, with nothing signed or stored, when this node may not sign (``SigningRefused``) or when any
        op breaks a rule every peer applies on receipt (``EntryError`` whose ``detail["refusals"]`` lists
        them by op index, as :meth:`check_ops` returns them).
        """
        payload, seq, signing, refusals = self._draft(ops, me=me, author=author, now_ms=now_ms)
        if ed25519_public_b64(signing.public) != ed25519_public_b64(key):
            raise SigningRefused(f"this node's signing key is not the one the manifest allows for seq {seq}")
        if refusals:  # never sign an op that every peer would refuse
            raise EntryError("; ".join(f"op {x.index} ({x.op} {x.key}): {x.reason}: {x.message}" for x in refusals)
                             + " — nothing was signed", reason=refusals[0].reason,
                             refusals=[{"index": x.index, "op": x.op, "key": x.key, "reason": x.reason,
                                        "message": x.message} for x in refusals])
        data = csmod.sign(payload, keyid=f"{me}:{signing.name}", key=key)
        if len(data) > self.limits.max_envelope_bytes:  # peers quarantine it unread: drop it, store nothing
            raise EntryError(f"the change-set would be {len(data)} bytes, the cap is {self.limits.max_envelope_bytes}"
                             " ([limits] max_envelope_bytes); edit fewer entries at once — nothing was signed",
                             reason="oversize")
        out = self.receive(data, now_ms=now_ms, source="local")
        if out.status != "accepted":
            raise SigningRefused(f"own change-set was not accepted: {out.reason}: {out.message}")
        return out

    def check_ops(self, ops: list[dict[str, Any]], *, me: str, now_ms: int,
                  author: str = "check") -> list[Refusal]:
        """The ops of a would-be :meth:`edit` that every peer would refuse; nothing is signed or stored."""
        return self._draft(ops, me=me, author=author, now_ms=now_ms)[3]

    def _draft(self, ops: list[dict[str, Any]], *, me: str, author: str,
               now_ms: int) -> tuple[bytes, int, Any, list[Refusal]]:
        """(unsigned payload, its seq, the manifest's signing key for that seq, the ops peers would refuse)."""
        seq, prev = self.next_position(me)
        if self._frozen_from(me, seq) is not None:
            raise SigningRefused(f"{me} is frozen by an equivocation proof; the root must declare a chain restart")
        signing = self.manifest.nodes[me].current_key(seq)
        if signing is None:
            raise SigningRefused(f"manifest v{self.manifest.version} allows no key of {me} for seq {seq}")
        hlc = hlcmod.next_hlc(self.state.max_hlc(), now_ms)
        ops = [self._with_holder_epoch(op, me, hlc) for op in ops]
        payload = csmod.build_payload(origin=me, seq=seq, prev=prev, hlc=hlc, manifest=self.manifest.version,
                                      author=author, ops=ops)
        return payload, seq, signing, self._origin_refusals(payload)

    def _origin_refusals(self, payload: bytes) -> list[Refusal]:
        """Every op of an unsigned payload that peers would refuse, by the same :meth:`op_refusal`."""
        obj = csmod.parse_payload(payload)
        cs_id, origin, seq = csmod.changeset_id(payload), obj["origin"], obj["seq"]
        out = []
        hpol = held.policy_of(self.manifest)
        for i, raw in enumerate(obj["ops"]):
            why = self.op_refusal(raw, origin=origin, seq=seq, hlc=obj["hlc"])
            if why is None and hpol is not None and raw.get("op") in held.OPS:  # the origin's own rules (§16.4)
                why = held.origin_refusal(raw, signer=origin, hlc=obj["hlc"], ops=self.state.history(raw["key"]),
                                          holds=self.state.holds(raw["key"]), policy=hpol)
            if why is not None:
                out.append(Refusal(cs_id, i, origin, seq, str(raw.get("key", "")), str(raw.get("op", "")), *why))
        return out

    def _with_holder_epoch(self, op: dict[str, Any], me: str, hlc: str) -> dict[str, Any]:
        if op.get("op") != "put" or not isinstance(op.get("entry"), dict):
            return op
        entry = dict(op["entry"])
        old = self.state.winner(op["key"]) or self.state.latest(me, op["key"])
        old_entry = old.entry if old is not None and old.op == "put" else None
        if old_entry and not model.holder_changed(old_entry, entry) and hlcmod.is_hlc(old_entry.get("holder_epoch")):
            entry["holder_epoch"] = old_entry["holder_epoch"]
        else:
            entry["holder_epoch"] = hlc
        return {**op, "entry": entry}


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
            mine = sorted((p[1] or 0, i, len(p[2])) for i, p in self.parked.items()
                          if p[0] == origin and p[3] not in UNVERIFIED_PARK_REASONS)
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
        parked = [(i, p[2]) for i, p in self.parked.items()
                  if p[0] == origin and p[1] == seq and p[3] not in UNVERIFIED_PARK_REASONS]
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
        return ([(opkinds.ENTRY, k, a.ref) for k, a in self.winners.items()]
                + [(ns, k, a.ref) for (ns, k), a in self.records.items()]
                + [line for rows in self.held_.values() for h in rows for line in h.lines()])

    def digest(self) -> str:
        return view_digest(self.digest_view())
