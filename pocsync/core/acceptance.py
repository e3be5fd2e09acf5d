"""Acceptance of one change-set envelope: PROTOCOL.md §8, one function per step, in the document's order.

Like python-tuf's ``TrustedMetadataSet`` (one method per step of the TUF client workflow), each
step of PROTOCOL.md §8 is one function below, in the order the document lists them:

1. :func:`check_size`          2. :func:`read_envelope`        3. :func:`duplicate`
4. :func:`check_signature`     5. :func:`check_origin_and_range`
6. :func:`chain` (its pure rule: :func:`chain_check`; equivocation: :mod:`pocsync.core.equivocation`)
7. :func:`clock`               8. :func:`accept` (and :func:`release`)

:func:`receive` runs them for one envelope; :func:`verify` runs the steps that need no local state
(1, 2, 4, 5: what a proof's two change-sets must pass, §11); :func:`audit_log` is ``pocsync log
verify``: steps 4–6 over a stored log, with the same :func:`chain_check` as acceptance.  Pure: the
replica's state is read and written only through the core's ``State`` interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import equivocation, jsonc
from pocsync.core import hlc as hlcmod
from pocsync.core.changeset import ChangeSet, Op
from pocsync.core.manifest import Manifest, NodeInfo, Restart
from pocsync.core.outcome import Head, Limits, Outcome, Proof, Status
from pocsync.errors import (
    ChangeSetError,
    EnvelopeError,
    OversizeError,
    Parked,
    PocsyncError,
    ProtocolError,
    SignatureError,
)

if TYPE_CHECKING:
    from pocsync.core.replica import Replica
    from pocsync.core.state import State


@dataclass(frozen=True)
class Identity:
    """What step 2 reads without trusting it: the id, and the payload's claimed origin and seq."""

    cs_id: str
    origin: str | None
    seq: int | None


@dataclass(frozen=True)
class Signed:
    """A change-set whose signature verified (step 4), before its origin and range are checked."""

    env: dsse.Envelope
    obj: dict[str, Any]
    keyid: str
    node_id: str
    name: str
    node: NodeInfo | None


# --- the steps, in the order of PROTOCOL.md §8 -------------------------------------------------------
def check_size(data: bytes, limits: Limits) -> None:
    """PROTOCOL §8 step 1 (Size): more than ``max_envelope_bytes`` → ``oversize``, before parsing anything."""
    if len(data) > limits.max_envelope_bytes:
        raise OversizeError(f"envelope is {len(data)} bytes, the cap is {limits.max_envelope_bytes}", size=len(data))


def read_envelope(data: bytes, limits: Limits) -> Identity:
    """PROTOCOL §8 step 2 (Envelope): read as in §5 (strict JSON, ``bad_envelope``, ``wrong_payload_type``).

    Also peeks, untrusted, at the payload's ``origin`` and ``seq`` (step 3 and parking).  The
    ``signature_count`` rule of this step is checked with the signature (:func:`check_signature`),
    after the duplicate check, as pocsync always has: a duplicate is ignored whatever its signatures.
    """
    cs_id, origin, seq = csmod.peek_identity(data, max_bytes=limits.max_envelope_bytes)
    return Identity(cs_id, origin, seq)


def duplicate(state: State, ident: Identity) -> Outcome | None:
    """PROTOCOL §8 step 3 (Duplicate): an id already in the log at the same (origin, seq) → ignored."""
    if ident.origin is None or ident.seq is None:
        return None
    have = state.logged(ident.origin, ident.seq)
    if have is None or have.id != ident.cs_id:
        return None
    state.unpark(ident.cs_id)
    return Outcome(Status.DUPLICATE, "duplicate", "already in the log", ident.cs_id, ident.origin, ident.seq)


def check_signature(data: bytes, manifest: Manifest, limits: Limits) -> Signed:
    """PROTOCOL §8 step 4 (Signature): one signature (``signature_count``) by a signing key of the
    named node in the current manifest, any range (``unknown_key``), that verifies (``bad_signature``);
    a failure naming a newer manifest parks (``manifest_unknown``); then the payload is parsed (§7)
    and one verified under a newer manifest is parked too."""
    peeked = csmod._take_peeked(data, limits.max_envelope_bytes)
    env = (
        peeked[0]
        if peeked is not None
        else dsse.parse(data, max_bytes=limits.max_envelope_bytes, payload_type=dsse.CHANGESET_TYPE)
    )
    if len(env.signatures) != 1:
        raise EnvelopeError(f"exactly one signature required, found {len(env.signatures)}", reason="signature_count")
    keyid = env.signatures[0].keyid
    node_id, sep, name = keyid.partition(":")
    node = manifest.node(node_id) if sep else None
    key = node.key_named(name) if node else None
    try:
        if key is None:
            raise SignatureError(
                f"keyid {keyid!r} names no signing key in manifest v{manifest.version}",
                reason="unknown_key",
                keyid=keyid,
            )
        dsse.verify_one(env, lambda _kid: key.public)
    except SignatureError:
        peek = _peek_manifest(env.payload)
        if peek is not None and peek > manifest.version:
            raise Parked(
                f"signed under manifest v{peek}; this node holds v{manifest.version}",
                reason="manifest_unknown",
                manifest=peek,
            ) from None
        raise
    obj = csmod.parse_payload(env.payload, parsed=peeked[1] if peeked is not None else None)
    if obj["manifest"] > manifest.version:
        raise Parked(
            f"signed under manifest v{obj['manifest']}; this node holds v{manifest.version}",
            reason="manifest_unknown",
            manifest=obj["manifest"],
        )
    return Signed(env, obj, keyid, node_id, name, node)


def check_origin_and_range(signed: Signed, data: bytes) -> ChangeSet:
    """PROTOCOL §8 step 5 (Origin and range): ``origin`` is the key's node (``key_not_of_origin``) and
    the key is valid for ``seq`` (``key_out_of_range``)."""
    obj, keyid = signed.obj, signed.keyid
    if obj["origin"] != signed.node_id:
        raise SignatureError(
            f"change-set of origin {obj['origin']!r} signed by key {keyid!r} of another node",
            reason="key_not_of_origin",
            keyid=keyid,
        )
    if signed.node is None or signed.node.key_for(signed.name, obj["seq"]) is None:
        raise SignatureError(
            f"key {keyid!r} is not valid for seq {obj['seq']} of {signed.node_id!r}",
            reason="key_out_of_range",
            keyid=keyid,
            seq=obj["seq"],
        )
    ops = tuple(
        Op(i, o["op"], o["key"], o.get("entry") if isinstance(o.get("entry"), dict) else None, o)
        for i, o in enumerate(obj["ops"])
    )
    return ChangeSet(
        id=csmod.changeset_id(signed.env.payload),
        origin=obj["origin"],
        seq=obj["seq"],
        prev=obj["prev"],
        hlc=obj["hlc"],
        manifest=obj["manifest"],
        author=obj["author"],
        ops=ops,
        keyid=keyid,
        envelope=bytes(data),
    )


def chain_check(cs: ChangeSet, seg: Restart, pred: Head | None) -> tuple[str, str] | None:
    """PROTOCOL §8 step 6 (Chain), the rule itself: (reason, message), or None when ``cs`` chains.

    ``seg`` is the chain segment holding ``cs.seq``; ``pred`` what the log holds at seq−1.  At a
    segment start ``prev`` must be the declared one (``bad_prev``); otherwise seq−1 must be in the
    log (``gap``: park), ``prev`` its id (``prev_mismatch``) and ``hlc`` not below its hlc
    (``hlc_regression``).  Acceptance and ``pocsync log verify`` (:func:`audit_log`) both use it.
    """
    if cs.seq == seg.seq:
        if cs.prev != seg.prev:
            return "bad_prev", f"seq {cs.seq} starts a chain segment; prev must be {seg.prev!r}"
        return None
    if pred is None:
        return "gap", f"waiting for {cs.origin} seq {cs.seq - 1}"
    if cs.prev != pred.id:
        return "prev_mismatch", f"prev does not match {cs.origin} seq {cs.seq - 1} ({pred.id})"
    if cs.hlc < pred.hlc:
        return "hlc_regression", f"hlc {cs.hlc} is below the previous {pred.hlc}"
    return None


def chain(rep: Replica, cs: ChangeSet, *, now_ms: int, source: str) -> Outcome | None:
    """PROTOCOL §8 step 6 (Chain): another held change-set at this (origin, seq) → equivocation (§11);
    else :func:`chain_check`: park a ``gap``; quarantine the others and keep ``cs`` as evidence (ADR 37)."""
    st = rep.state
    other = equivocation.held_conflict(
        st, cs, lambda d: verify(d, rep.manifest, rep.limits), max_bytes=rep.limits.max_envelope_bytes
    )
    if other is not None:
        st.unpark(cs.id)
        rep.add_proof(Proof(cs.origin, cs.seq, other, cs.envelope), now_ms=now_ms)
        return Outcome(
            Status.EQUIVOCATION,
            "equivocation",
            f"{cs.origin} signed two change-sets with seq {cs.seq}",
            cs.id,
            cs.origin,
            cs.seq,
        )
    seg = rep.manifest.nodes[cs.origin].segment(cs.seq)
    why = chain_check(cs, seg, None if cs.seq == seg.seq else st.logged(cs.origin, cs.seq - 1))
    if why is None:
        return None
    reason, message = why
    if reason == "gap":
        st.park(cs.id, cs.origin, cs.seq, cs.envelope, reason, message)
        return Outcome(Status.PARKED, reason, message, cs.id, cs.origin, cs.seq)
    st.unpark(cs.id)
    equivocation.keep_as_evidence(st, cs)
    st.quarantine(cs.envelope, reason, message, source)
    return Outcome(Status.QUARANTINED, reason, message, cs.id, cs.origin, cs.seq)


def clock(rep: Replica, cs: ChangeSet, *, now_ms: int) -> Outcome | None:
    """PROTOCOL §8 step 7 (Clock): an hlc more than ``max_clock_skew`` ahead of the wall clock → park."""
    skew = rep.limits.max_clock_skew_ms
    if not hlcmod.ahead_of_wall(cs.hlc, now_ms, skew):
        return None
    msg = f"hlc {cs.hlc} is more than {skew // 1000} s ahead of this clock"
    rep.state.park(cs.id, cs.origin, cs.seq, cs.envelope, "clock_skew", msg)
    return Outcome(Status.PARKED, "clock_skew", msg, cs.id, cs.origin, cs.seq)


def accept(rep: Replica, cs: ChangeSet) -> Outcome:
    """PROTOCOL §8 step 8 (Accept): append to the log and apply the ops (§8.2); :func:`release` follows."""
    rep.state.unpark(cs.id)
    rep.state.append(cs)
    return Outcome(Status.ACCEPTED, "", "", cs.id, cs.origin, cs.seq, rep.apply(cs))


def release(rep: Replica, out: Outcome, *, now_ms: int) -> Outcome:
    """PROTOCOL §8 step 8, its second half: release the parked change-sets that now follow."""
    if out.status != Status.ACCEPTED:
        return out
    pending = [(out.origin, out.seq)]
    while pending:
        origin, seq = pending.pop()
        assert origin is not None and seq is not None  # an accepted outcome names its change-set
        for nxt in rep.state.parked_for(origin, seq + 1):
            sub = receive_one(rep, nxt, now_ms=now_ms, source="parked")
            if sub.status == Status.ACCEPTED:
                out.also_accepted.append(sub)
                pending.append((sub.origin, sub.seq))
    return out


# --- running the steps ------------------------------------------------------------------------------
def receive(rep: Replica, data: bytes, *, now_ms: int, source: str) -> Outcome:
    """Steps 1–8 for one envelope, then the release of the parked change-sets it lets follow."""
    return release(rep, receive_one(rep, data, now_ms=now_ms, source=source), now_ms=now_ms)


def receive_one(rep: Replica, data: bytes, *, now_ms: int, source: str) -> Outcome:
    """Steps 1–8 for one envelope, in order: the first step with an outcome decides."""
    st, limits = rep.state, rep.limits
    try:
        check_size(data, limits)
        ident = read_envelope(data, limits)
    except ProtocolError as exc:  # the store keeps a hash, the size and the first bytes only
        st.quarantine(data, exc.reason, exc.message, source)
        return Outcome(Status.QUARANTINED, exc.reason, exc.message)
    out = duplicate(st, ident)
    if out is not None:
        return out
    try:
        cs = _total(lambda: check_origin_and_range(check_signature(data, rep.manifest, limits), data))
    except Parked as exc:
        st.park(ident.cs_id, ident.origin, ident.seq, data, exc.reason, exc.message)
        return Outcome(Status.PARKED, exc.reason, exc.message, ident.cs_id, ident.origin, ident.seq)
    except PocsyncError as exc:
        st.unpark(ident.cs_id)
        st.quarantine(data, exc.reason, exc.message, source)
        return Outcome(Status.QUARANTINED, exc.reason, exc.message, ident.cs_id, ident.origin, ident.seq)
    return chain(rep, cs, now_ms=now_ms, source=source) or clock(rep, cs, now_ms=now_ms) or accept(rep, cs)


def verify(data: bytes, manifest: Manifest, limits: Limits) -> ChangeSet:
    """Steps 1, 2, 4 and 5 (no local state): the verified change-set, or a typed error or :class:`Parked`."""

    def steps() -> ChangeSet:
        check_size(data, limits)
        return check_origin_and_range(check_signature(data, manifest, limits), data)

    return _total(steps)


@dataclass(frozen=True)
class LogProblem:
    origin: str
    seq: int
    problem: str


def audit_log(
    rows: Iterable[tuple[str, int, str, str, bytes]], manifest: Manifest, limits: Limits
) -> tuple[int, list[LogProblem]]:
    """``pocsync log verify``: every stored change-set ``(origin, seq, id, hlc, envelope)``, in (origin,
    seq) order, re-verified (steps 1–5) against ``manifest`` and chained by :func:`chain_check`."""
    problems: list[LogProblem] = []
    n = 0
    last: dict[str, ChangeSet] = {}
    for origin, seq, cs_id, hlc, envelope in rows:
        n += 1
        try:
            cs = verify(envelope, manifest, limits)
        except PocsyncError as exc:
            problems.append(LogProblem(origin, seq, f"{exc.reason}: {exc.message}"))
            continue
        if (cs.origin, cs.seq, cs.id, cs.hlc) != (origin, seq, cs_id, hlc):
            problems.append(LogProblem(origin, seq, "stored columns disagree with the signed payload"))
            continue  # a tampered row: its chain position is not what the store says
        prior = last.get(origin)
        pred = Head(prior.seq, prior.id, prior.hlc) if prior is not None and prior.seq == seq - 1 else None
        node = manifest.nodes.get(cs.origin)
        if node is None:  # a verified payload names its origin's key, so only a tampered or foreign store gets here
            problems.append(LogProblem(origin, seq, f"origin {cs.origin!r} is not a member of the manifest"))
            continue
        why = chain_check(cs, node.segment(cs.seq), pred)
        if why is not None:
            problem = f"seq {seq - 1} missing from the log" if why[0] == "gap" else f"{why[0]}: {why[1]}"
            problems.append(LogProblem(origin, seq, problem))
        last[origin] = cs
    return n, problems


def _peek_manifest(payload: bytes) -> int | None:
    """Step 4 (b): the untrusted top-level ``manifest`` of a payload whose signature failed."""
    try:
        obj = jsonc.loads(payload)
        v = obj.get("manifest") if isinstance(obj, dict) else None
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    except PocsyncError:
        return None


def _total(steps: Callable[[], ChangeSet]) -> ChangeSet:
    """Run verification steps; any non-protocol error of a hostile input is ``bad_changeset``."""
    try:
        cs: ChangeSet = steps()
        return cs
    except PocsyncError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise ChangeSetError(f"change-set is malformed ({type(exc).__name__})") from None
