"""Freshness as readers see it (issue 15, PROTOCOL.md §15): last_modified, last_verified, last_confirmed.

The registers and their derivation are in :mod:`pocsync.core.checks` and the store's freshness block;
this module only turns them into what the API, the CLI, the exports and the page show: RFC 3339 UTC
times (from the hlcs), channels by label ("email 1", "phone 1") — never the channel hashes, never a
value — and the overdue judgement against the node's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pocsync.core import checks

#: Columns the exports add after the entry's own fields (derived: import ignores them).
EXPORT_COLUMNS = ("last_modified", "last_verified", "last_confirmed")


def iso(hlc_or_ms: str | int | None) -> str | None:
    """An hlc (or milliseconds) as RFC 3339 UTC with milliseconds, e.g. ``2026-12-03T07:41:25.123Z``."""
    if hlc_or_ms is None:
        return None
    ms = checks.hlc_ms(hlc_or_ms) if isinstance(hlc_or_ms, str) else hlc_or_ms
    assert ms is not None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def public(f: dict[str, Any]) -> dict[str, Any]:
    """The freshness members of one entry (a row of ``Store.freshness``) for readers."""
    return {**public_base(f), "overdue": public_overdue(f.get("overdue"))}


def public_base(f: dict[str, Any]) -> dict[str, Any]:
    """:func:`public` but ``overdue``: what does not move with the clock."""
    return {
        "last_modified": iso(f["last_modified"]),
        "last_verified": iso(f["last_verified"]),
        "last_confirmed": iso(f["last_confirmed"]),
        "verification": [
            {
                "channel": c["label"],
                "last_verified": iso(c["last_verified"]),
                "last_result": c["last_result"],
                "last_checked": iso(c["last_result_hlc"]),
            }
            for c in f["channels"]
        ],
    }


def public_overdue(od: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``overdue`` member of :func:`public`."""
    if not od:
        return None
    return {
        "reasons": od["reasons"],
        "confirm_days": od["confirm_days"],
        "verify_days": od["verify_days"],
        "confirm_due": iso(od["confirm_due_ms"]),
        "verify_due": iso(od["verify_due_ms"]),
    }


#: what :func:`snapshot` keeps: per entry (key, entry, freshness row, public members but overdue); the policy;
#: whether the manifest enables freshness
Snapshot = tuple[list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]], Any, bool]


def snapshot(store: Any) -> Snapshot:
    """The part of :func:`by_key` that does not move with the clock (issue 13: read once per view digest and
    manifest, not once per second): :func:`at` adds the overdue judgement."""
    m = store.manifest()
    policy = m.policy.get("freshness") if m is not None else None
    on = m is not None and "freshness" in m.features
    return [(f["key"], f["entry"], f, public_base(f)) for f in store.freshness(now_ms_=None)], policy, on


def at(snap: Snapshot, now_ms: int) -> dict[str, dict[str, Any]]:
    """``by_key(store, now_ms=now_ms)`` from a :func:`snapshot` of the same store (pure)."""
    rows, policy, on = snap
    return {
        key: {**base, "overdue": public_overdue(checks.overdue(entry, f, policy, now_ms=now_ms) if on else None)}
        for key, entry, f, base in rows
    }


def by_key(store: Any, *, now_ms: int | None, key: str | None = None) -> dict[str, dict[str, Any]]:
    """``{entry key: public freshness}`` for the whole view (or one key)."""
    return {f["key"]: public(f) for f in store.freshness(now_ms_=now_ms, key=key)}


def annotate(store: Any, rows: list[dict[str, Any]], *, now_ms: int | None) -> list[dict[str, Any]]:
    """View rows with ``freshness`` added (for the exports: derived columns, never read back)."""
    fresh = by_key(store, now_ms=now_ms)
    return [{**r, "freshness": fresh.get(r["key"])} for r in rows]
