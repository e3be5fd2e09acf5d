"""Held contact changes (PROTOCOL.md §16, ADRs 28-30): the contact-change guard.

A ``put`` that changes an entry's contact channels (``emails``, ``phones``,
``secure_channels``, ``public_key``, ``public_key_fingerprint``), ``person`` or any member
this version does not know (every field but those of :data:`UNGUARDED_FIELDS`)
relative to the key's *last winning put* (even if that entry has since been
withdrawn or deleted, whichever origin made it) is **held**: it does not enter the
merge until a ``release`` or an ``approve`` op makes it effective, and it then
ranks at that op's hlc.  Four op kinds in namespace ``held`` (key: the entry key,
member ``put``: the held put's ref ``<cs id>#<op index>``):

- ``notice``: another node than the put's origin told the previous channels;
- ``object``: somebody objected (through the notice's link): the change is cancelled;
- ``approve``: a second person approved; counts from another node than the put's
  origin, or with a ``staff`` signature by a key listed in the manifest for the
  put's origin whose name is not the put's author; a UN node's approval counts
  even after an objection;
- ``release``: counts when a notice by another node than the origin has an hlc at
  least ``hold_seconds`` below the release's and no objection ranks below it.

Everything here is a pure function of the ops (no clock, no I/O): :func:`evaluate`
sweeps one key's entry ops and hold ops in rank order and returns each origin's
effective latest assertion, the winner, and the held puts still pending or
objected (with the digest lines they contribute).  The manifest's policy and the receipt
rules of the hold ops are in :mod:`pocsync.core.held_rules` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pocsync.core import jsonc, model
from pocsync.core.held_rules import FEATURE as FEATURE
from pocsync.core.held_rules import HOLD_SECONDS_DEFAULT as HOLD_SECONDS_DEFAULT
from pocsync.core.held_rules import HOLD_SECONDS_MAX as HOLD_SECONDS_MAX
from pocsync.core.held_rules import NODE_RE as NODE_RE
from pocsync.core.held_rules import RECEIPT_REASONS as RECEIPT_REASONS
from pocsync.core.held_rules import REF_RE as REF_RE
from pocsync.core.held_rules import STAFF_CONTEXT as STAFF_CONTEXT
from pocsync.core.held_rules import STAFF_NAME_RE as STAFF_NAME_RE
from pocsync.core.held_rules import Policy as Policy
from pocsync.core.held_rules import check_op as check_op
from pocsync.core.held_rules import check_policy as check_policy
from pocsync.core.held_rules import check_staff as check_staff
from pocsync.core.held_rules import policy_of as policy_of
from pocsync.core.held_rules import staff_message as staff_message
from pocsync.core.merge import Assertion, winner

NAMESPACE = "held"
OPS = ("notice", "object", "approve", "release")
#: Entry fields whose change holds a put (``person`` and every contact channel).
GUARDED_FIELDS = ("person", "emails", "phones", "secure_channels", "public_key", "public_key_fingerprint")
#: Entry fields whose change is never held. Every other field is guarded too -- a member this version does not
#: know (``email``, ``contact_form``, ...) is shown on the PoC page labelled from its name, so it may be a channel.
UNGUARDED_FIELDS = (
    "state",
    "kind",
    "organisation",
    "position",
    "available_24_7",
    "timezone",
    "languages",
    "networks",
    "notes",
    "holder_epoch",
)
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
#: Reasons the origin refuses to sign a hold op with (never used by receivers, §16.4).
ORIGIN_REASONS = ("not_held", "not_pending", "own_notice", "self_approval", "release_early", "objected")
# digest namespaces (§16.5)
LINE_PENDING, LINE_NOTICE, LINE_OBJECTED = "held", "held-notice", "held-objected"


# --- the contact view of an entry --------------------------------------------------------
def guarded(entry: dict[str, Any] | None) -> bytes:
    """Canonical bytes of the guarded fields of ``entry`` (absent fields count as absent)."""
    entry = entry or {}
    return jsonc.dumps({f: v for f, v in entry.items() if f not in UNGUARDED_FIELDS})


def changes_contacts(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    return guarded(old) != guarded(new)


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """Names of the guarded fields that differ (what a PoC page may show, never the values)."""
    old, new = old or {}, new or {}
    other = sorted((set(old) | set(new)) - set(GUARDED_FIELDS) - set(UNGUARDED_FIELDS))
    names = [f for f in (*GUARDED_FIELDS, *other) if jsonc.dumps([old.get(f)]) != jsonc.dumps([new.get(f)])]
    # an unknown member's name is the proposer's text and reaches the notice mail: only a plain name is shown
    return list(dict.fromkeys(f if f in GUARDED_FIELDS or FIELD_NAME_RE.match(f) else "another field" for f in names))


# --- the sweep (§16.3) -------------------------------------------------------------------
@dataclass(frozen=True)
class Held:
    """A held put that has not taken effect (and is still its origin's latest op of the key)."""

    put: Assertion
    previous: Assertion  # the last winning put it was judged against
    status: str  # pending | objected
    notice: Assertion | None  # the earliest notice by another node
    objection: Assertion | None
    takes_effect_ms: int | None  # earliest hlc ms at which a release counts (notice + hold)
    holds: tuple[Assertion, ...]  # every hold op naming the put

    @property
    def key(self) -> str:
        return self.put.key

    def lines(self) -> list[tuple[str, str, str]]:
        """Its digest lines (namespace, key, ref)."""
        if self.status == "objected":
            assert self.objection is not None
            return [(LINE_OBJECTED, self.key, self.objection.ref)]
        out = [(LINE_PENDING, self.key, self.put.ref)]
        if self.notice is not None:
            out.append((LINE_NOTICE, self.key, self.notice.ref))
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (no entry values)."""

        def op(a: Assertion | None) -> dict[str, Any] | None:
            return None if a is None else {"ref": a.ref, "origin": a.origin, "hlc": a.hlc, "author": a.author}

        return {
            "key": self.key,
            "put": self.put.ref,
            "origin": self.put.origin,
            "author": self.put.author,
            "hlc": self.put.hlc,
            "status": self.status,
            "previous": self.previous.ref,
            "fields": changed_fields(self.previous.entry, self.put.entry),
            "notice": op(self.notice),
            "objection": op(self.objection),
            "takes_effect_ms": self.takes_effect_ms,
            "holds": [{"op": h.op, **(op(h) or {})} for h in self.holds],
        }


@dataclass
class KeyResult:
    latest: dict[str, Assertion]  # each origin's effective latest assertion
    winner: Assertion | None  # a put, or None (nothing, or a withdrawal, wins)
    held: list[Held]
    released: dict[str, str]  # put ref -> ref of the op that made it effective
    held_refs: frozenset[str] = frozenset()  # every put that was held (released, pending, objected or superseded)


def ms(hlc: str) -> int:
    return int(hlc[:13])


def iso(ms_: int) -> str:
    """UTC time of ``ms_`` (unix ms) as ``2027-01-31T12:00:00Z`` (pure arithmetic, no clock)."""
    import datetime as _dt

    return (_dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=ms_)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref_of(a: Assertion) -> str:
    return str((a.entry or {}).get("put", ""))


def approver_counts(h: Assertion, put: Assertion) -> bool:
    """Whether approval ``h`` is by a second person: another node, or a listed staff key (not the author).

    The staff signature itself was checked on receipt (:func:`check_staff`); here only whose it is.
    """
    if h.origin != put.origin:
        return True
    staff = (h.entry or {}).get("staff")
    return isinstance(staff, dict) and staff.get("origin") == put.origin and staff.get("name") != put.author


def _effect(put: Assertion, holds: list[Assertion], policy: Policy) -> Assertion | None:
    """The hold op that makes ``put`` effective (the least-ranked that counts), or None."""
    mine = [h for h in holds if _ref_of(h) == put.ref and h.hlc > put.hlc]
    objections = [h for h in mine if h.op == "object"]
    first_obj = min(objections, key=lambda a: a.rank, default=None)
    notices = [h for h in mine if h.op == "notice" and h.origin != put.origin]
    cands = []
    for h in mine:
        before_obj = first_obj is None or h.rank < first_obj.rank
        if (
            h.op == "release"
            and before_obj
            and any(n.rank < h.rank and ms(h.hlc) >= ms(n.hlc) + policy.hold_ms for n in notices)
        ):
            cands.append(h)
        elif h.op == "approve" and approver_counts(h, put) and (before_obj or h.origin in policy.un_nodes):
            cands.append(h)
    return min(cands, key=lambda a: a.rank, default=None)


def is_subject(put: Assertion, policy: Policy) -> bool:
    return policy.since is None or put.hlc >= policy.since


def _still_held(
    held: dict[str, tuple[Assertion, Assertion]],
    released: dict[str, str],
    seen: dict[str, tuple[int, int]],
    by_put: dict[str, list[Assertion]],
    policy: Policy,
) -> list[Held]:
    """The held puts of a sweep that have not taken effect and are still their origin's latest, by rank."""
    out: list[Held] = []
    for ref, (put, previous) in held.items():
        if ref in released or seen.get(put.origin) != (put.seq, put.index):
            continue
        mine = tuple(h for h in by_put.get(ref, []) if h.hlc > put.hlc)
        if _effect(put, by_put.get(ref, []), policy) is not None:  # counted, but its origin had moved on first
            continue
        objection = min((h for h in mine if h.op == "object"), key=lambda x: x.rank, default=None)
        notice = min(
            (h for h in mine if h.op == "notice" and h.origin != put.origin), key=lambda x: x.rank, default=None
        )
        out.append(
            Held(
                put,
                previous,
                "objected" if objection is not None else "pending",
                notice,
                objection,
                None if notice is None or objection is not None else ms(notice.hlc) + policy.hold_ms,
                mine,
            )
        )
    out.sort(key=lambda h: h.put.rank)
    return out


def evaluate(ops: Iterable[Assertion], holds: Iterable[Assertion], policy: Policy) -> KeyResult:
    """One key: its entry ops (every origin) and hold ops → effective latest per origin, winner, held puts.

    Order-free and duplicate-free: the inputs are de-duplicated by ref and swept in rank order.
    """
    uniq = sorted({a.ref: a for a in ops}.values(), key=lambda a: a.rank)
    hold_list = sorted({h.ref: h for h in holds}.values(), key=lambda a: a.rank)
    by_put: dict[str, list[Assertion]] = {}  # a put's hold ops, looked up once: the sweep stays O(n log n)
    for h in hold_list:
        by_put.setdefault(_ref_of(h), []).append(h)
    events: list[tuple[tuple[str, str, str, int], int, int, Assertion, Assertion | None]] = [
        (a.rank, 0, n, a, None) for n, a in enumerate(uniq)
    ]
    heapq.heapify(events)
    latest: dict[str, Assertion] = {}
    seen: dict[str, tuple[int, int]] = {}
    withdrawal: Assertion | None = None
    last_put: Assertion | None = None
    held: dict[str, tuple[Assertion, Assertion]] = {}  # ref -> (put, previous)
    released: dict[str, str] = {}

    def apply(a: Assertion) -> None:
        nonlocal withdrawal, last_put
        cur = latest.get(a.origin)
        if cur is None or (a.seq, a.index) > (cur.seq, cur.index):
            latest[a.origin] = a
        if a.op == "withdraw" and (withdrawal is None or a.rank > withdrawal.rank):
            withdrawal = a
        w = winner(latest.values(), withdrawal)
        if w is not None and w.op == "put":
            last_put = w

    while events:
        _, phase, _n, a, by = heapq.heappop(events)
        if phase == 0:
            pos = seen.get(a.origin)
            if pos is None or (a.seq, a.index) > pos:
                seen[a.origin] = (a.seq, a.index)
            if (
                a.op == "put"
                and last_put is not None
                and is_subject(a, policy)
                and changes_contacts(last_put.entry, a.entry)
            ):
                held[a.ref] = (a, last_put)
                eff = _effect(a, by_put.get(a.ref, []), policy)
                if eff is not None:
                    heapq.heappush(events, ((eff.hlc, a.origin, a.cs_id, a.index), 1, len(held), a, eff))
                continue
            apply(a)
        else:
            assert by is not None
            if seen.get(a.origin) != (a.seq, a.index):  # its origin said something later first
                continue
            apply(dataclasses.replace(a, hlc=by.hlc))
            released[a.ref] = by.ref
    w = winner(latest.values(), withdrawal)
    out = _still_held(held, released, seen, by_put, policy)
    return KeyResult(latest, w if w is not None and w.op == "put" else None, out, released, frozenset(held))


# --- the origin's own rules (§16.4) ------------------------------------------------------
def origin_refusal(
    raw: dict[str, Any], *, signer: str, hlc: str, ops: list[Assertion], holds: list[Assertion], policy: Policy
) -> tuple[str, str] | None:
    """Why the origin ``signer`` must not sign hold op ``raw`` at ``hlc`` (or None).

    Peers would accept such an op but it would have no effect (or, for a self-approval, prove
    nothing): the origin refuses it so that nobody believes it counted.
    """
    key, ref, kind = raw.get("key"), raw.get("put"), raw.get("op")
    put = next((a for a in ops if a.ref == ref and a.op == "put" and a.key == key), None)
    if put is None:
        return "not_held", f"no put {ref} of {key} is known at this node"
    res = evaluate(ops, holds, policy)
    h = next((x for x in res.held if x.put.ref == ref), None)
    if h is None:
        return "not_pending", f"put {ref} of {key} is not a held change waiting to take effect"
    if kind == "notice":
        if signer == put.origin:
            return "own_notice", "the notice must come from another node than the change's origin"
    elif kind == "approve":
        probe = Assertion(put.key, signer, "approve", hlc, "sha256:" + "f" * 64, 0, 0, "", dict(raw))
        if not approver_counts(probe, put):
            return "self_approval", (
                "the proposer's own node cannot approve its change without a staff key "
                "listed for it of another person; typed author names prove nothing"
            )
        if h.status == "objected" and signer not in policy.un_nodes:
            return "objected", "the change was objected to; only a UN node's approval can override that"
    elif kind == "release":
        if h.status == "objected":
            return "objected", "the change was objected to; it cannot be released"
        if h.notice is None:
            return "release_early", "no notice by another node yet: the hold has not started"
        if ms(hlc) < ms(h.notice.hlc) + policy.hold_ms:
            return "release_early", (
                f"the hold ends at {ms(h.notice.hlc) + policy.hold_ms} ms (notice "
                f"{h.notice.hlc} + {policy.hold_ms // 1000} s)"
            )
    return None


def key_state(key: str) -> str:
    """The State a hold op's key concerns (its key is an entry key)."""
    return model.parse_key(key)[0]
