"""The coherence report (issue 5; docs/ARCHITECTURE.md): where regional directories disagree about the same PoC.

A State's diplomatic PoC should be the same everywhere.  Each origin's latest ``put`` of a key is
compared field by field (lists of addresses, phones, languages and networks as sets; the holder
epoch ignored); every key where two origins differ is reported with each origin's value of each
differing field, so the secretariats can fix the stale listing.  Pure.
"""

from __future__ import annotations

from typing import Any

from pocsync.core.model import CONTACT_FIELDS

SET_FIELDS = ("emails", "phones", "languages", "networks")
COMPARED = tuple(f for f in CONTACT_FIELDS if f not in ("holder_epoch", "networks"))


def _norm(field: str, value: Any) -> Any:
    if field in SET_FIELDS and isinstance(value, list):
        return tuple(sorted(map(str, value)))
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, sort_keys=True)
    return value


def divergences(versions_by_key: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``versions_by_key``: key → each origin's latest assertion ({origin, op, hlc, entry})."""
    out = []
    for key in sorted(versions_by_key):
        puts = [v for v in versions_by_key[key] if v.get("op") == "put" and isinstance(v.get("entry"), dict)]
        if len(puts) < 2:
            continue
        fields: dict[str, dict[str, Any]] = {}
        for f in COMPARED:
            values = {v["origin"]: v["entry"].get(f) for v in puts}
            if len({repr(_norm(f, x)) for x in values.values()}) > 1:
                fields[f] = values
        if fields:
            out.append({"key": key, "origins": sorted(v["origin"] for v in puts), "fields": fields})
    return out


def networks_by_state(versions_by_key: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list[str]]]:
    """State → kind → the regional directories (origins) that currently list that PoC."""
    out: dict[str, dict[str, list[str]]] = {}
    for key, versions in sorted(versions_by_key.items()):
        state, _, kind = key.partition("/")
        origins = sorted(v["origin"] for v in versions if v.get("op") == "put")
        if origins:
            out.setdefault(state, {})[kind] = origins
    return out
