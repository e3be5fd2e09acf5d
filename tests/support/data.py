"""Test data every kind of test shares (issue 12: one definition each): the example federation's scopes
and an example PoC entry (invented organisations, example.org addresses)."""

from __future__ import annotations

from typing import Any

#: each example node's scope as the CLI takes it (``manifest add-node --scope``)
SCOPES: dict[str, str] = {
    "un": "all",
    "eu": "AUT,DEU,FRA,ITA",
    "osce": "AUT,DEU,FRA,ITA,UKR",
    "arf": "AUS,IDN,JPN",
    "oas": "BRA,CAN,MEX",
}


def manifest_scope(node: str) -> Any:
    """A node's scope as a manifest holds it: ``"all"`` or a list of States."""
    s = SCOPES[node]
    return s if s == "all" else s.split(",")


def entry(key: str, *, full: bool = False, **over: Any) -> dict[str, Any]:
    """An example entry for ``key`` ("STATE/kind"), with ``over`` replacing fields.

    ``full=False``: the fields a node's staff give ``pocsync entry put`` (what the node tests edit).
    ``full=True``: every field, holder epoch included, as the in-memory replica tests (tests.support.fed) sign
    them directly."""
    state, kind = key.split("/")
    diplomatic = kind == "diplomatic"
    e: dict[str, Any] = {"state": state, "kind": kind}
    if full:
        e |= {
            "organisation": f"Example {'Ministry of Foreign Affairs' if diplomatic else 'National CSIRT'} of {state}",
            "position": "Cyber coordinator" if diplomatic else "Duty officer",
            "emails": [f"{'cyber-diplo' if diplomatic else 'cert'}-{state.lower()}@example.org"],
            "phones": ["+493012345678"],
            "available_24_7": kind == "technical",
            "timezone": "Europe/Berlin",
            "languages": ["en"],
            "holder_epoch": "0000000000001-0000",
        }
    else:
        e |= {
            "organisation": f"Example {kind} PoC of {state} (fictional)",
            "emails": [f"{kind[:4]}-{state.lower()}@example.org"],
            "available_24_7": kind == "technical",
        }
    if diplomatic:
        e["person"] = "A. Example"
    e.update(over)
    return e
