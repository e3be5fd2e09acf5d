"""Held contact changes at the command line (issue 16 part 1, PROTOCOL.md §16)."""

from __future__ import annotations

import time
from typing import Any

from pocsync.core import held
from pocsync.core import manifest as mf


def on_enable(old: mf.Manifest, payload: dict[str, Any]) -> dict[str, Any]:
    """When a new manifest version turns held-changes on, hold only the puts signed from now on.

    ``policy.held-changes.since`` is set to the current time (unless the policy already names one): the
    changes signed before the federation enabled the guard had no notice, and must not be held after the
    fact when every node re-derives its view (ADR 28).
    """
    if held.FEATURE in old.features or held.FEATURE not in (payload.get("features") or []):
        return payload
    policy = dict((payload.get("policy") or {}).get(held.FEATURE) or {})
    policy.setdefault("hold_seconds", held.HOLD_SECONDS_DEFAULT)
    policy.setdefault("since", f"{time.time_ns() // 10**6:013d}-0000")
    mf.unsigned(mf.set_policy(payload, held.FEATURE, policy))
    return mf.set_policy(payload, held.FEATURE, policy)
