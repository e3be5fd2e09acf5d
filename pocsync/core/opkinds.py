"""Op kinds: key namespaces, scope rules, receipt rules and feature gates (PROTOCOL.md §8.2, ADR 16).

Every op kind names the **namespace** its keys live in, how a key is read (and which
State it concerns, for the scope rule), what its receipt rules are, and the
**feature** that gates it.  Base kinds (``put``, ``delete``, ``withdraw`` on the
``entry`` namespace) have no feature: they are always on.  A gated kind takes
effect only while the current root-signed manifest lists its feature; a node
refuses to install a manifest naming a feature missing from :data:`FEATURES`.

Pure: no I/O, no clock.  Receipt rules here are deterministic (regular
expressions over ASCII, JSON types, integer limits from the manifest's
``policy``), so every node on every version judges every op alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from pocsync.core import checks, model
from pocsync.errors import EntryError, ManifestError

FEATURE_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")
ENTRY = "entry"

#: Features this software implements: name -> one-line description.
FEATURES: dict[str, str] = {
    "toy-note": "op kind `note`: a short free-text note per State (namespace `note`); demonstrates feature gating",
    "comm-checks": "op kind `check`: the signed result of checking one channel of an entry (namespace `check`, §15)",
    "freshness": "op kind `confirm`: an origin confirms an entry without changing it; overdue policy (§15)",
}

#: Names reserved for features announced in PROTOCOL.md §8.3 but not built yet (a manifest listing one
#: is refused by this software, like any unknown feature).
RESERVED_FEATURES = ("held-changes", "templates")

#: Every reason :func:`refusal` may give (besides those of :data:`pocsync.core.model.REASONS`).
REASONS = ("unknown_op", "feature_off", "bad_key", "out_of_scope", "bad_note", "bad_check")


@dataclass(frozen=True)
class OpKind:
    op: str
    namespace: str
    feature: str | None
    state_of: Callable[[str], str]  # key -> the State it concerns; raises EntryError(bad_key)
    check: Callable[[dict[str, Any], str, dict[str, Any]], None]  # (raw op, cs hlc, policy); raises EntryError
    # (namespace, record key) registers an effective op of a non-entry kind updates; default: its own key
    records: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None

    def records_of(self, raw: dict[str, Any]) -> list[tuple[str, str]]:
        return self.records(raw) if self.records is not None else [(self.namespace, raw["key"])]


def _entry_state(key: str) -> str:
    return model.parse_key(key)[0]


def _check_entry_op(raw: dict[str, Any], cs_hlc: str, policy: dict[str, Any]) -> None:
    if raw.get("op") == "put":
        model.check_structure(raw["key"], raw.get("entry"), cs_hlc=cs_hlc)


def _note_state(key: str) -> str:
    if not isinstance(key, str) or not model.STATE_RE.match(key):
        raise EntryError(f"note key {key!r} must be an ISO 3166-1 alpha-3 code", reason="bad_key", field="key")
    return key


NOTE_MAX_DEFAULT = 280


def _check_note(raw: dict[str, Any], cs_hlc: str, policy: dict[str, Any]) -> None:
    limit = policy.get("toy-note", {}).get("max_length", NOTE_MAX_DEFAULT)
    text = raw.get("text")
    if not isinstance(text, str) or model.blank(text) or len(text) > limit:
        raise EntryError(f"note text must be a non-empty string of at most {limit} characters",
                         reason="bad_note", field="text")


KINDS: dict[str, OpKind] = {
    "put": OpKind("put", ENTRY, None, _entry_state, _check_entry_op),
    "delete": OpKind("delete", ENTRY, None, _entry_state, _check_entry_op),
    "withdraw": OpKind("withdraw", ENTRY, None, _entry_state, _check_entry_op),
    "note": OpKind("note", "note", "toy-note", _note_state, _check_note),
    "check": OpKind("check", checks.NS_CHECK, "comm-checks", checks.entry_key_state, checks.check_check,
                    checks.check_records),
    "confirm": OpKind("confirm", checks.NS_CONFIRM, "freshness", checks.entry_key_state, checks.check_confirm,
                      checks.confirm_records),
}


def refusal(raw: dict[str, Any], *, features: frozenset[str], policy: dict[str, Any], cs_hlc: str,
            covers: Callable[[str], bool]) -> tuple[str, str] | None:
    """(reason, message) refusing one op, or None: kind, feature, key, scope, then the kind's rules."""
    name = raw.get("op")
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        return "unknown_op", f"unknown op {name!r}"
    if kind.feature is not None and kind.feature not in features:
        return "feature_off", f"op {name!r} needs feature {kind.feature!r}, which the manifest does not list"
    try:
        state = kind.state_of(raw.get("key"))  # type: ignore[arg-type]
    except EntryError as exc:
        return exc.reason, exc.message
    if not covers(state):
        return "out_of_scope", f"{state} is outside the origin's scope"
    try:
        kind.check(raw, cs_hlc, policy)
    except EntryError as exc:
        return exc.reason, exc.message
    return None


# --- manifest: features and policy ------------------------------------------------------
def parse_features(raw: object) -> frozenset[str]:
    """The manifest's ``features``: absent = none; else a sorted list of distinct names."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(f, str) and FEATURE_RE.match(f) for f in raw):
        raise ManifestError(f"features must be a list of names matching {FEATURE_RE.pattern}")
    if raw != sorted(set(raw)):
        raise ManifestError("features must be sorted and distinct")
    return frozenset(raw)


def _note_policy(value: dict[str, Any]) -> None:
    extra = set(value) - {"max_length"}
    if extra:
        raise ManifestError(f"policy.toy-note has unknown members {sorted(extra)}")
    n = value.get("max_length", NOTE_MAX_DEFAULT)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10_000:
        raise ManifestError("policy.toy-note.max_length must be an integer from 1 to 10000")


POLICY_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {"toy-note": _note_policy,
                                                              "freshness": checks.check_freshness_policy}


def parse_policy(raw: object, features: frozenset[str]) -> dict[str, Any]:
    """The manifest's ``policy``: one object per listed feature that has federation policy."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ManifestError("policy must be an object of feature name -> object")
    for name, value in raw.items():
        if name not in features:
            raise ManifestError(f"policy names feature {name!r}, which the manifest's features do not list")
        if not isinstance(value, dict):
            raise ManifestError(f"policy.{name} must be an object")
        if name in POLICY_CHECKS:
            POLICY_CHECKS[name](value)
    return raw


def unsupported(features: frozenset[str]) -> list[str]:
    """Features of a manifest that this software lacks (sorted)."""
    return sorted(features - set(FEATURES))
