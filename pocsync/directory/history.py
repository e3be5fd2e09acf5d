"""A State's own audit trail (issue 16 part 2, PROTOCOL.md §17.1, ADR 31).

:func:`state_history` reads, from a node's store, every op of the log whose key concerns one State
(whatever its origin, applied or refused), oldest first by merge rank, each with a field-by-field
diff against the previous applied version of its key; the refusals recorded for them (for example
another directory writing outside its scope); the State's current entries; and the current
records of other namespaces whose key concerns the State (``opkinds.KINDS[op].state_of``: the
check results of a ``comm-checks`` federation appear here by themselves).

:func:`state_bundle` adds what makes it verifiable without trusting this node: the signed
change-set envelopes those ops came in, verbatim, and every installed manifest version (a verifier
anchors the chain at the federation's root key).  ``tests/independent/bundle_verify.py`` checks one
without pocsync.

Read-only: nothing here writes to the store.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from pocsync.core import jsonc, model, opkinds
from pocsync.errors import EntryError, PocsyncError
from pocsync.store import queries

BUNDLE_FORMAT = "pocsync.history-bundle/v1"
HISTORY_FORMAT = "pocsync.history/v1"


def hlc_time(hlc: str) -> str | None:
    """The wall-clock part of an hlc as RFC 3339 UTC with milliseconds, or None."""
    try:
        ms = int(hlc[:13])
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def state_of(op: str, key: object) -> str | None:
    """The State an op's key concerns: the kind's own rule; for a kind this software does not know, a key
    that is the State's code or starts with it and a slash (so that nothing plausibly the State's is hidden)."""
    kind = opkinds.KINDS.get(op)
    if kind is not None:
        try:
            return kind.state_of(key)  # type: ignore[arg-type]
        except (EntryError, PocsyncError, TypeError, ValueError, AttributeError):
            return None
    if isinstance(key, str):
        head = key.split("/", 1)[0]
        if model.STATE_RE.match(head):
            return head
    return None


def namespace_of(op: str) -> str:
    kind = opkinds.KINDS.get(op)
    return kind.namespace if kind is not None else "?"


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Field-by-field changes from ``before`` to ``after`` (sorted by field): added, changed, removed."""
    b, a = before or {}, after or {}
    out = []
    for f in sorted(set(b) | set(a)):
        if f in b and f in a:
            if jsonc.dumps(b[f]) != jsonc.dumps(a[f]):
                out.append({"field": f, "change": "changed", "before": b[f], "after": a[f]})
        elif f in a:
            out.append({"field": f, "change": "added", "before": None, "after": a[f]})
        else:
            out.append({"field": f, "change": "removed", "before": b[f], "after": None})
    return out


def _payload(envelope: bytes) -> bytes:
    env = json.loads(envelope)
    return base64.b64decode(env["payload"], validate=True)


def _touching(store: Any, state: str) -> list[tuple[Any, dict[str, Any], list[tuple[int, dict[str, Any]]]]]:
    """(log row, payload, [(op index, op)]) of every logged change-set with an op concerning ``state``."""
    out = []
    needle = state.encode()
    for r in queries.log_in_order(store.conn):
        payload = _payload(bytes(r["envelope"]))
        if needle not in payload and b"\\u" not in payload:  # cheap filter: a key concerning the State names
            continue  # it, unless spelled with JSON escapes ("\u0044EU": strict JSON, accepted by peers)
        p = jsonc.loads(payload)
        ops = [
            (i, op)
            for i, op in enumerate(p.get("ops") or [])
            if isinstance(op, dict) and state_of(str(op.get("op")), op.get("key")) == state
        ]
        if ops:
            out.append((r, p, ops))
    return out


def state_history(store: Any, state: str) -> dict[str, Any]:
    """The audit trail of ``state`` at this node (the body of ``GET /v1/history/{state}``)."""
    state = state.upper()
    items = _history_items(store, state)
    _add_diffs(items)
    _mark_held(store, items)
    current = [row for row in store.entries() if row["key"].split("/", 1)[0] == state]
    m = store.manifest()
    return {
        "format": HISTORY_FORMAT,
        "state": state,
        "node": store.node_id,
        "digest": store.digest(),
        "manifest": m.version if m is not None else None,
        "keys": sorted({str(x["key"]) for x in items} | {c["key"] for c in current}),
        "ops": items,
        "refused": sum(1 for x in items if x["status"] == "refused"),
        "current": current,
        "records": _state_records(store, state),
    }


def _history_items(store: Any, state: str) -> list[dict[str, Any]]:
    """Every op touching ``state``, applied or refused, in merge order (hlc, origin, cs_id, index)."""
    refused = {(r["cs_id"], r["idx"]): r for r in queries.refusals(store.conn)}
    items = []
    for r, _p, ops in _touching(store, state):
        for i, op in ops:
            name = str(op.get("op"))
            ref = refused.get((r["id"], i))
            item: dict[str, Any] = {
                "key": op.get("key"),
                "namespace": namespace_of(name),
                "op": name,
                "origin": r["origin"],
                "seq": r["seq"],
                "cs_id": r["id"],
                "index": i,
                "hlc": r["hlc"],
                "time": hlc_time(r["hlc"]),
                "author": r["author"],
                "manifest": r["manifest"],
                "status": "refused" if ref is not None else "applied",
                "reason": ref["reason"] if ref is not None else None,
                "message": ref["message"] if ref is not None else None,
            }
            if name == "put":
                item["entry"] = op.get("entry")
            elif namespace_of(name) not in (opkinds.ENTRY, "?"):
                item["fields"] = {k: v for k, v in op.items() if k not in ("op", "key")}
            items.append(item)
    items.sort(key=lambda x: (x["hlc"], x["origin"], x["cs_id"], x["index"]))
    return items


def _add_diffs(items: list[dict[str, Any]]) -> None:
    """Set each item's ``diff``: against the previous *applied* version of its key (any origin), by merge rank."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for x in items:
        k = (x["namespace"], str(x["key"]))
        prev = last.get(k)
        if x["op"] == "put" or "fields" in x:
            now = x.get("entry") if x["op"] == "put" else x["fields"]
            x["diff"] = {
                "against": (
                    {"origin": prev["origin"], "cs_id": prev["cs_id"], "index": prev["index"]} if prev else None
                ),
                "changes": diff(
                    prev and (prev.get("entry") if prev["op"] == "put" else prev.get("fields")),
                    now if isinstance(now, dict) else None,
                ),
            }
        else:
            x["diff"] = None
        if x["status"] == "applied" and (x["op"] == "put" or "fields" in x):
            last[k] = x


def _state_records(store: Any, state: str) -> list[dict[str, Any]]:
    """The registers (records) whose winning op concerns ``state``."""
    records = []
    for r in queries.records(store.conn):
        # a register holds the op that won it; its key names the State even where the register's own key is
        # derived (e.g. "DEU/technical/<channel>" for a check, §15)
        op = json.loads(r["entry"])
        if state in (state_of(r["op"], op.get("key") if isinstance(op, dict) else None), state_of(r["op"], r["key"])):
            records.append(
                {
                    "namespace": r["ns"],
                    "key": r["key"],
                    "op": r["op"],
                    "origin": r["origin"],
                    "hlc": r["hlc"],
                    "time": hlc_time(r["hlc"]),
                    "cs_id": r["cs_id"],
                    "index": r["idx"],
                    "author": r["author"],
                    "record": op,
                }
            )
    return records


def _mark_held(store: Any, items: list[dict[str, Any]]) -> None:
    """A put the contact-change guard held is accepted ("applied" by §8.2) but did not take effect when it
    was signed: mark it ``"held": "pending" | "objected" | "superseded" | "released"`` (released: with the
    ref of the release or approval that made it effective), so that nobody reads a redirection attempt as
    the State's contact (PROTOCOL.md §16.3)."""
    from pocsync.core import held
    from pocsync.store.sqlite import SQLiteState

    m = store.manifest()
    policy = held.policy_of(m) if m is not None else None
    if policy is None:
        return
    st = SQLiteState(store.conn)
    for key in sorted({str(x["key"]) for x in items if x["op"] == "put" and x["status"] == "applied"}):
        res = held.evaluate(st.history(key), st.holds(key), policy)
        waiting = {h.put.ref: h.status for h in res.held}
        for x in items:
            ref = f"{x['cs_id']}#{x['index']}"
            if x["op"] != "put" or str(x["key"]) != key or ref not in res.held_refs:
                continue
            x["held"] = "released" if ref in res.released else waiting.get(ref, "superseded")
            if ref in res.released:
                x["released_by"] = res.released[ref]


def state_bundle(store: Any, state: str) -> dict[str, Any]:
    """The history with its evidence: the signed change-sets (verbatim) and every installed manifest."""
    state = state.upper()
    hist = state_history(store, state)
    ids = {x["cs_id"] for x in hist["ops"]}
    envelopes = [bytes(r["envelope"]).decode("utf-8") for r in queries.log_in_order(store.conn) if r["id"] in ids]
    manifests = [store.manifest_bytes(v).decode("utf-8") for v in store.manifest_versions()]
    other = set()
    for env in envelopes:
        for op in jsonc.loads(_payload(env.encode())).get("ops") or []:
            if isinstance(op, dict):
                s = state_of(str(op.get("op")), op.get("key"))
                if s and s != state:
                    other.add(s)
    return {
        "format": BUNDLE_FORMAT,
        "state": state,
        "node": store.node_id,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "history": hist,
        "changesets": envelopes,
        "manifests": manifests,
        "other_states": sorted(other),
    }
