"""The merged check records (PROTOCOL.md §15): the latest signed ``check`` op per (entry, channel), from any origin.

What a campaign reads before mailing a channel (did another node check it within the window?) and what the
reports count.  Also the vocabulary of results and target statuses, and the deadline bounds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pocsync.store import queries

RESULTS = ("sent", "acknowledged", "no_response", "bounced", "answered", "no_answer", "wrong_number")
#: target statuses: waiting to be mailed, being mailed, mailed (waiting for the acknowledgement), results,
#: and the two that sign nothing: skipped (checked by a node within the window, or address changed) and
#: invalid (the address does not validate at send time)
STATUSES = ("pending", "sending", "sent", "acknowledged", "no_response", "bounced", "skipped", "invalid")
MIN_DEADLINE_S = 5
MAX_DEADLINE_S = 90 * 86_400


def hlc_ms(hlc: str) -> int:
    try:
        return int(hlc.split("-")[0])
    except (ValueError, AttributeError):
        return 0


def latest_checks(store: Any, key: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(entry key, channel id) -> the latest check op by hlc, from any origin: origin, result, hlc, campaign.
    ``key``: that entry's channels only (an index range, not every register of the federation)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in queries.check_records(store.conn, key):
        try:
            op = json.loads(r["entry"])
        except ValueError:
            continue
        if not isinstance(op, dict) or not isinstance(op.get("key"), str) or not isinstance(op.get("channel"), str):
            continue
        k = (op["key"], op["channel"])
        if k not in out or r["hlc"] > out[k]["hlc"]:
            out[k] = {
                "origin": r["origin"],
                "hlc": r["hlc"],
                "result": op.get("result"),
                "campaign": op.get("campaign"),
                "deadline_ms": op.get("deadline_ms"),
            }
    return out


def sent_pending_until(c: dict[str, Any]) -> int | None:
    """Until when a merged ``sent`` record is a check in flight: its deadline, but never more than the longest
    deadline a campaign can have after it was signed (``deadline_ms`` is any integer on the wire).  None for
    any other result or a ``sent`` without a deadline."""
    if c.get("result") != "sent" or not isinstance(c.get("deadline_ms"), int) or isinstance(c.get("deadline_ms"), bool):
        return None
    deadline: int = c["deadline_ms"]
    return min(deadline, hlc_ms(c["hlc"]) + MAX_DEADLINE_S * 1000)


def holds_channel(c: dict[str, Any], *, now_ms: int, window_ms: int) -> bool:
    """Whether another node's latest check keeps a campaign from mailing the channel (PROTOCOL.md §15.6): a
    result within the window, or a ``sent`` within the window whose deadline is still pending — a ``sent``
    left without a result after its deadline checked nothing."""
    if hlc_ms(c["hlc"]) < now_ms - window_ms:
        return False
    until = sent_pending_until(c)
    return until is None or now_ms < until


def scope_covers(store: Any) -> Callable[[str], bool]:
    from pocsync.directory.sources import scope_check

    return scope_check(store)
