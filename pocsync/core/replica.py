"""The replica: acceptance, effects, equivocation and merge over a state (docs/ARCHITECTURE.md; PROTOCOL.md §8–§11).

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

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import acceptance, equivocation, held, model, opkinds
from pocsync.core import changeset as csmod
from pocsync.core import hlc as hlcmod
from pocsync.core.changeset import ChangeSet
from pocsync.core.keys import ed25519_public_b64
from pocsync.core.manifest import Manifest, SigningKey
from pocsync.core.merge import Assertion, greater, greater_withdrawal, winner
from pocsync.core.outcome import (  # re-exported: callers import them from here
    MANIFEST_DEPENDENT,
    MAX_EVIDENCE_PER_ORIGIN,
    MAX_PARKED_BYTES_PER_ORIGIN,
    MAX_PARKED_PER_ORIGIN,
    MAX_UNVERIFIED_PARKED,
    MAX_UNVERIFIED_PARKED_BYTES,
    MAX_UNVERIFIED_PARKED_PER_ORIGIN,
    QUARANTINE_HEAD_BYTES,
    UNVERIFIED_PARK_REASONS,
    Head,
    Limits,
    Outcome,
    Proof,
    Refusal,
    Status,
)
from pocsync.core.state import MemoryState, State
from pocsync.errors import EntryError, SigningRefused

__all__ = [
    "MANIFEST_DEPENDENT",
    "MAX_EVIDENCE_PER_ORIGIN",
    "MAX_PARKED_BYTES_PER_ORIGIN",
    "MAX_PARKED_PER_ORIGIN",
    "MAX_UNVERIFIED_PARKED",
    "MAX_UNVERIFIED_PARKED_BYTES",
    "MAX_UNVERIFIED_PARKED_PER_ORIGIN",
    "QUARANTINE_HEAD_BYTES",
    "UNVERIFIED_PARK_REASONS",
    "Head",
    "Limits",
    "MemoryState",
    "Outcome",
    "Proof",
    "Refusal",
    "Replica",
    "State",
    "Status",
]


class Replica:
    def __init__(self, state: State, manifest: Manifest, *, limits: Limits = Limits()) -> None:
        self.state = state
        self.manifest = manifest
        self.limits = limits

    # --- receiving (PROTOCOL.md §8, one function per step: pocsync.core.acceptance) -------------------
    def receive(self, data: bytes, *, now_ms: int, source: str = "local") -> Outcome:
        """Apply one envelope by the acceptance and effect rules; release parked successors."""
        return acceptance.receive(self, data, now_ms=now_ms, source=source)

    # --- effects ----------------------------------------------------------------
    def _frozen_from(self, origin: str, seq: int) -> int | None:
        """The fork seq of a proof in the chain segment holding ``seq``, if any (PROTOCOL.md §11)."""
        return equivocation.frozen_from(self.state.proofs(), self.manifest, origin, seq)

    def op_refusal(self, op: csmod.Op | dict[str, Any], *, origin: str, seq: int, hlc: str) -> tuple[str, str] | None:
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
        why = opkinds.refusal(
            raw,
            features=self.manifest.features,
            policy=self.manifest.policy,
            cs_hlc=hlc,
            covers=lambda state: node.covers(state, seq),
            origin=origin,
            role_of=lambda nid: n.role if (n := self.manifest.nodes.get(nid)) else None,
        )
        if why is not None and why[0] == "out_of_scope":
            return why[0], why[1].replace("the origin's scope", f"the scope of {origin} at seq {seq}")
        return why

    def apply(self, cs: ChangeSet) -> list[Refusal]:
        """The effect of an accepted change-set's ops (PROTOCOL.md §8.2); the ops it refused."""
        st = self.state
        fork = self._frozen_from(cs.origin, cs.seq)
        hpol = held.policy_of(self.manifest)
        refused: list[Refusal] = []
        touched: set[str] = set()
        for op in cs.ops:
            why = (
                equivocation.frozen_message(cs.origin, fork)
                if fork is not None and cs.seq >= fork
                else self.op_refusal(op, origin=cs.origin, seq=cs.seq, hlc=cs.hlc)
            )
            if why is not None:
                r = Refusal(cs.id, op.index, cs.origin, cs.seq, op.key, op.op, why[0], why[1])
                st.refuse(r)
                refused.append(r)
                continue
            kind = opkinds.KINDS[op.op]
            if kind.namespace == held.NAMESPACE:  # a hold op: the key's held puts are re-derived below
                st.add_hold(
                    Assertion(op.key, cs.origin, op.op, cs.hlc, cs.id, op.index, cs.seq, cs.author, dict(op.raw))
                )
                touched.add(op.key)
                continue
            if kind.namespace != opkinds.ENTRY:  # last-writer-wins registers, one digest line each (§9)
                for namespace, rkey in kind.records_of(op.raw):
                    a = Assertion(rkey, cs.origin, op.op, cs.hlc, cs.id, op.index, cs.seq, cs.author, dict(op.raw))
                    st.set_record(namespace, rkey, greater(st.record(namespace, rkey), a, kind.rank))
                continue
            self._apply_entry_op(cs, op, held_on=hpol is not None)
            touched.add(op.key)
        for key in sorted(touched):
            self._settle(key, hpol)
        return refused

    def _apply_entry_op(self, cs: ChangeSet, op: csmod.Op, *, held_on: bool) -> None:
        """The effect of one accepted entry op (put, delete, withdraw): its origin's latest, deaths, withdrawals.

        With held changes on, the op joins the key's history instead of becoming its origin's latest:
        :meth:`_settle` sweeps that history.
        """
        st = self.state
        a = Assertion(
            op.key, cs.origin, op.op, cs.hlc, cs.id, op.index, cs.seq, cs.author, op.entry if op.op == "put" else None
        )
        if held_on:
            st.add_history(a)
        prior = None if held_on else st.latest_rank(cs.origin, op.key)
        # The latest assertion is the greatest (seq, index), whatever the order of application: after a
        # chain restart a later segment can be applied before an earlier one arrives.
        if not held_on and (prior is None or (a.seq, a.index) > prior):
            st.set_latest(a)
        if op.op in ("delete", "withdraw"):  # every applied death counts, latest or not: order-free
            st.note_death(op.key, cs.hlc)
        if op.op == "withdraw":
            st.set_withdrawal(greater_withdrawal(st.withdrawal(op.key), a))

    def _settle(self, key: str, hpol: held.Policy | None) -> None:
        """Re-derive the winner of ``key`` (and, with held changes on, its latest assertions and held puts)."""
        st = self.state
        if hpol is not None:  # held changes: sweep the key's whole history (PROTOCOL.md §16.3)
            res = held.evaluate(st.history(key), st.holds(key), hpol)
            st.replace_latest(key, res.latest)
            st.set_winner(key, res.winner)
            st.set_held(key, res.held)
            return
        w = winner(st.latest_for_key(key), st.withdrawal(key))
        st.set_winner(key, w if w is not None and w.op == "put" else None)

    # --- equivocation and re-evaluation -----------------------------------------
    def check_proof(self, proof: Proof) -> None:
        """Raise unless both change-sets verify, share origin and seq, and differ (PROTOCOL.md §11)."""
        equivocation.check_proof(proof, lambda data: acceptance.verify(data, self.manifest, self.limits))

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
        candidates = self.state.all_log() + self.state.all_parked() + self.state.take_quarantined(MANIFEST_DEPENDENT)
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

    def edit(self, ops: list[dict[str, Any]], *, me: str, key: Ed25519PrivateKey, author: str, now_ms: int) -> Outcome:
        """Sign one change-set of ``ops`` at the next seq and apply it.

        Raises, with nothing signed or stored, when this node may not sign (``SigningRefused``) or when any
        op breaks a rule every peer applies on receipt (``EntryError`` whose ``detail["refusals"]`` lists
        them by op index, as :meth:`check_ops` returns them).
        """
        payload, seq, signing, refusals = self._draft(ops, me=me, author=author, now_ms=now_ms)
        if ed25519_public_b64(signing.public) != ed25519_public_b64(key):
            raise SigningRefused(f"this node's signing key is not the one the manifest allows for seq {seq}")
        if refusals:  # never sign an op that every peer would refuse
            raise EntryError(
                "; ".join(f"op {x.index} ({x.op} {x.key}): {x.reason}: {x.message}" for x in refusals)
                + " — nothing was signed",
                reason=refusals[0].reason,
                refusals=[
                    {"index": x.index, "op": x.op, "key": x.key, "reason": x.reason, "message": x.message}
                    for x in refusals
                ],
            )
        data = csmod.sign(payload, keyid=f"{me}:{signing.name}", key=key)
        if len(data) > self.limits.max_envelope_bytes:  # peers quarantine it unread: drop it, store nothing
            raise EntryError(
                f"the change-set would be {len(data)} bytes, the cap is {self.limits.max_envelope_bytes}"
                " ([limits] max_envelope_bytes); edit fewer entries at once — nothing was signed",
                reason="oversize",
            )
        out = self.receive(data, now_ms=now_ms, source="local")
        if out.status != Status.ACCEPTED:
            raise SigningRefused(f"own change-set was not accepted: {out.reason}: {out.message}")
        return out

    def check_ops(self, ops: list[dict[str, Any]], *, me: str, now_ms: int, author: str = "check") -> list[Refusal]:
        """The ops of a would-be :meth:`edit` that every peer would refuse; nothing is signed or stored."""
        return self._draft(ops, me=me, author=author, now_ms=now_ms)[3]

    def _draft(
        self, ops: list[dict[str, Any]], *, me: str, author: str, now_ms: int
    ) -> tuple[bytes, int, SigningKey, list[Refusal]]:
        """(unsigned payload, its seq, the manifest's signing key for that seq, the ops peers would refuse)."""
        seq, prev = self.next_position(me)
        if self._frozen_from(me, seq) is not None:
            raise SigningRefused(f"{me} is frozen by an equivocation proof; the root must declare a chain restart")
        signing = self.manifest.nodes[me].current_key(seq)
        if signing is None:
            raise SigningRefused(f"manifest v{self.manifest.version} allows no key of {me} for seq {seq}")
        hlc = hlcmod.next_hlc(self.state.max_hlc(), now_ms)
        ops = [self._with_holder_epoch(op, me, hlc) for op in ops]
        payload = csmod.build_payload(
            origin=me, seq=seq, prev=prev, hlc=hlc, manifest=self.manifest.version, author=author, ops=ops
        )
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
                why = held.origin_refusal(
                    raw,
                    signer=origin,
                    hlc=obj["hlc"],
                    ops=self.state.history(raw["key"]),
                    holds=self.state.holds(raw["key"]),
                    policy=hpol,
                )
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
