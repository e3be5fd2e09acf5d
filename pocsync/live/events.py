"""Sync events: logged at INFO as structured records on the ``pocsync.sync`` logger (``pocsync.ops.logs``
writes them as JSON lines), with ids, seqs and reasons only — never entry content."""

from __future__ import annotations

import logging
from typing import Any

from pocsync.core.replica import Outcome

log = logging.getLogger("pocsync.sync")


def event(name: str, msg: str, *args: Any, level: int = logging.INFO, **fields: Any) -> None:
    """Log one sync event: a readable message plus fields (``event`` and ids, seqs, reasons)."""
    log.log(level, msg, *args, extra={"fields": {"event": name, **fields}})


def outcome_events(o: Outcome, source: str) -> None:
    """The events of one received change-set (not a duplicate): accepted, equivocation, quarantined or
    parked, then each op it refused."""
    fields: dict[str, Any] = {"origin": o.origin, "seq": o.seq, "id": o.cs_id, "source": source}
    if o.status == "accepted":
        event("changeset_accepted", "accepted %s seq %s from %s", o.origin, o.seq, source, **fields)
    elif o.status == "equivocation":
        event(
            "equivocation",
            "EQUIVOCATION: %s signed two change-sets with seq %s",
            o.origin,
            o.seq,
            level=logging.WARNING,
            **fields,
        )
    else:
        event(
            f"changeset_{o.status}",
            "%s %s seq %s from %s: %s: %s",
            o.status,
            o.origin,
            o.seq,
            source,
            o.reason,
            o.message,
            level=logging.WARNING if o.status == "quarantined" else logging.INFO,
            reason=o.reason,
            **fields,
        )
    for r in o.refused:
        event(
            "op_refused",
            "refused op %d (%s %s) of %s seq %s: %s",
            r.index,
            r.op,
            r.key,
            r.origin,
            r.seq,
            r.reason,
            origin=r.origin,
            seq=r.seq,
            index=r.index,
            op=r.op,
            key=r.key,
            reason=r.reason,
        )
