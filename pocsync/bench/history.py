"""Signed change-set histories made fast: a chain signed directly (as ``Replica.edit`` would), never held whole.

Every change-set is genuine (real Ed25519 signature, real chain, HLCs in the past so none is ahead
of the wall clock); entries are invented, with example.org addresses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import changeset as csmod
from pocsync.core import hlc as hlcmod


def state_codes(n: int) -> list[str]:
    """n invented three-letter state codes (X.. so they read as fictional)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [f"X{letters[i // 26 % 26]}{letters[i % 26]}" for i in range(n)]


def keys_for(n_entries: int, states: list[str] | None = None) -> list[str]:
    states = states or state_codes((n_entries + 1) // 2)
    out = [f"{s}/{k}" for s in states for k in ("technical", "diplomatic")]
    return out[:n_entries]


def entry(key: str, i: int, holder_epoch: str) -> dict[str, Any]:
    state, kind = key.split("/")
    e: dict[str, Any] = {
        "state": state,
        "kind": kind,
        "organisation": f"Example {kind} PoC of {state} (fictional)",
        "position": "Duty officer" if kind == "technical" else "Cyber coordinator",
        "emails": [f"{kind[:4]}-{state.lower()}@example.org"],
        "phones": ["+493012345678"],
        "available_24_7": kind == "technical",
        "timezone": "Europe/Berlin",
        "languages": ["en"],
        "notes": f"revision {i}",
        "holder_epoch": holder_epoch,
    }
    if kind == "diplomatic":
        e["person"] = "A. Example"
    return e


def chain(
    *,
    origin: str,
    key: Ed25519PrivateKey,
    keyid: str,
    manifest: int,
    count: int,
    keys: list[str],
    ops_per_cs: int = 1,
    start_seq: int = 1,
    prev: str | None = None,
) -> Iterator[bytes]:
    """``count`` envelopes of ``origin`` from ``start_seq``, each putting ``ops_per_cs`` keys (round robin)."""
    now = time.time_ns() // 10**6
    # one HLC per change-set, strictly increasing, ending a little before now
    base = now - count - 10_000
    last: str | None = None
    epochs: dict[str, str] = {}
    k = 0
    for i in range(count):
        hlc = hlcmod.next_hlc(last, base + i)
        last = hlc
        ops = []
        for _ in range(ops_per_cs):
            kk = keys[k % len(keys)]
            k += 1
            ep = epochs.setdefault(kk, hlc)
            ops.append({"op": "put", "key": kk, "entry": entry(kk, i, ep)})
        payload = csmod.build_payload(
            origin=origin, seq=start_seq + i, prev=prev, hlc=hlc, manifest=manifest, author=f"bench@{origin}", ops=ops
        )
        prev = csmod.changeset_id(payload)
        yield csmod.sign(payload, keyid=keyid, key=key)
