"""The merge (PROTOCOL.md §9): per key, the greatest live put or withdrawal wins.

Each origin asserts, per key, its latest op (``put``, ``delete`` or ``withdraw``).
A put is *live* while it is its origin's latest op for the key.  Every withdrawal
counts, whichever origin made it and whatever that origin did later.  The winner
of a key is the greatest ``(hlc, origin, change-set id, op index)`` among the live
puts and the withdrawals; the key is in the view only when the winner is a put.
In a namespace other than ``entry`` the greatest effective op of a key wins
(:func:`greater`).  The view digest has one ``<namespace> <key> <ref>`` line per key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Assertion:
    """One effective op: what ``origin`` said about ``key`` in change-set ``cs_id``.

    Entries (namespace ``entry``) keep ``entry``; ops of other namespaces keep their raw
    op object in ``entry`` (its value for readers).
    """

    key: str
    origin: str
    op: str  # put | delete | withdraw
    hlc: str
    cs_id: str
    index: int
    seq: int
    author: str
    entry: dict[str, Any] | None = None

    @property
    def rank(self) -> tuple[str, str, str, int]:
        return (self.hlc, self.origin, self.cs_id, self.index)

    @property
    def ref(self) -> str:
        return f"{self.cs_id}#{self.index}"


def winner(latest: Iterable[Assertion], withdrawal: Assertion | None) -> Assertion | None:
    """The winning assertion of one key, or ``None`` when nothing lists it.

    ``latest`` are the origins' latest assertions of the key; ``withdrawal`` the
    greatest withdrawal of the key from any origin.  A withdrawal can win (the key
    is then absent from the view): callers test ``result.op == "put"``.
    """
    candidates = [a for a in latest if a.op == "put"]
    if withdrawal is not None:
        candidates.append(withdrawal)
    return max(candidates, key=lambda a: a.rank, default=None)


def greater_withdrawal(current: Assertion | None, new: Assertion) -> Assertion:
    return new if current is None or new.rank > current.rank else current


def greater(
    current: Assertion | None, new: Assertion, rank: Callable[[Any, str, str, str, int], tuple[Any, ...]] | None = None
) -> Assertion:
    """Last-writer-wins register of a namespace other than ``entry``: the greatest rank wins.

    ``rank`` (an op kind's own, e.g. templates: version first) maps (raw op, hlc, origin, cs id, index)
    to a comparable tuple; by default the rank is (hlc, origin, cs id, index).
    """
    if current is None:
        return new
    if rank is None:
        return new if new.rank > current.rank else current

    def r(a: Assertion) -> tuple[Any, ...]:
        return rank(a.entry, a.hlc, a.origin, a.cs_id, a.index)

    return new if r(new) > r(current) else current


def digest_lines(view: Iterable[tuple[str, str, str]]) -> bytes:
    """One line ``"<namespace> <key> <cs id>#<op index>\n"`` per effective key, sorted by code point.

    ``view`` yields (namespace, key, ref): for the ``entry`` namespace the keys whose winner
    is a put; for another namespace every key that has a winner (PROTOCOL.md §9).
    """
    lines = sorted(f"{ns} {k} {ref}\n" for ns, k, ref in view)
    return "".join(lines).encode("utf-8")


def view_digest(view: Iterable[tuple[str, str, str]]) -> str:
    return "sha256:" + hashlib.sha256(digest_lines(view)).hexdigest()
