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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pocsync.core import checks, held, model, templates
from pocsync.errors import EntryError, ManifestError

FEATURE_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")
ENTRY = "entry"

#: Features this software implements: name -> one-line description.
FEATURES: dict[str, str] = {
    "toy-note": "op kind `note`: a short free-text note per State (namespace `note`); demonstrates feature gating",
    "templates": "op kind `template`: communication templates signed by publisher nodes (namespace `template`)",
    "comm-checks": "op kind `check`: the signed result of checking one channel of an entry (namespace `check`, §15)",
    "freshness": "op kind `confirm`: an origin confirms an entry without changing it; overdue policy (§15)",
    "held-changes": "contact changes are held until a notice by another node and a hold period, or an approval "
    "(op kinds `notice`, `object`, `approve`, `release`, namespace `held`; PROTOCOL.md §16)",
}

#: Features ``manifest create`` does not enable by itself: a federation turns them on deliberately
#: (``manifest set-features``), because they change how existing edits take effect (ADR 28).
OPT_IN_FEATURES = frozenset({"held-changes"})

#: Names reserved for features announced in PROTOCOL.md §8.3 but not built yet (a manifest listing one
#: is refused by this software, like any unknown feature).
RESERVED_FEATURES: tuple[str, ...] = ()

#: Every reason :func:`refusal` may give (besides those of :data:`pocsync.core.model.REASONS`).
REASONS = (
    "unknown_op",
    "feature_off",
    "bad_key",
    "out_of_scope",
    "bad_note",
    "bad_template",
    "bad_check",
) + held.RECEIPT_REASONS


@dataclass(frozen=True)
class OpKind:
    op: str
    namespace: str
    feature: str | None
    state_of: Callable[[str], str | None]  # key -> the State it concerns (None: no State); raises EntryError(bad_key)
    check: Callable[[dict[str, Any], str, dict[str, Any]], None]  # (raw op, cs hlc, policy); raises EntryError
    # a scope rule of its own, instead of the State rule: (origin, role_of, policy) -> refusal message or None
    allowed: Callable[[str, Callable[[str], str | None], dict[str, Any]], str | None] | None = None
    # merge rank of an effective op (namespaces other than entry): (raw op, hlc, origin, cs id, index) -> tuple;
    # None: (hlc, origin, cs id, index)
    rank: Callable[[dict[str, Any], str, str, str, int], tuple[Any, ...]] | None = None
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
        raise EntryError(
            f"note text must be a non-empty string of at most {limit} characters", reason="bad_note", field="text"
        )


def _template_state(key: str) -> None:
    if not isinstance(key, str) or not templates.ID_RE.match(key):
        raise EntryError(f"template key {key!r} must match {templates.ID_RE.pattern}", reason="bad_key", field="key")
    return None


def _check_template(raw: dict[str, Any], cs_hlc: str, policy: dict[str, Any]) -> None:
    templates.check_op(raw)


def template_publishers(policy: dict[str, Any]) -> list[str] | None:
    """``policy.templates.publishers``, or None when absent (then every node with role ``un`` publishes)."""
    publishers: list[str] | None = policy.get("templates", {}).get("publishers")
    return publishers


def may_publish_templates(origin: str, role_of: Callable[[str], str | None], policy: dict[str, Any]) -> bool:
    publishers = template_publishers(policy)
    return origin in publishers if publishers is not None else role_of(origin) == "un"


def _template_allowed(origin: str, role_of: Callable[[str], str | None], policy: dict[str, Any]) -> str | None:
    if may_publish_templates(origin, role_of, policy):
        return None
    publishers = template_publishers(policy)
    who = (
        f"policy.templates.publishers lists {publishers}"
        if publishers is not None
        else "without policy.templates.publishers only nodes with role 'un' may"
    )
    return f"{origin} may not publish templates ({who})"


KINDS: dict[str, OpKind] = {
    "put": OpKind("put", ENTRY, None, _entry_state, _check_entry_op),
    "delete": OpKind("delete", ENTRY, None, _entry_state, _check_entry_op),
    "withdraw": OpKind("withdraw", ENTRY, None, _entry_state, _check_entry_op),
    "note": OpKind("note", "note", "toy-note", _note_state, _check_note),
    "template": OpKind(
        "template",
        "template",
        "templates",
        _template_state,
        _check_template,
        allowed=_template_allowed,
        rank=templates.rank,
    ),
    "check": OpKind(
        "check",
        checks.NS_CHECK,
        "comm-checks",
        checks.entry_key_state,
        checks.check_check,
        records=checks.check_records,
    ),
    "confirm": OpKind(
        "confirm",
        checks.NS_CONFIRM,
        "freshness",
        checks.entry_key_state,
        checks.check_confirm,
        records=checks.confirm_records,
    ),
    **{k: OpKind(k, held.NAMESPACE, held.FEATURE, _entry_state, held.check_op) for k in held.OPS},
}


def refusal(
    raw: dict[str, Any],
    *,
    features: frozenset[str],
    policy: dict[str, Any],
    cs_hlc: str,
    covers: Callable[[str], bool],
    origin: str = "",
    role_of: Callable[[str], str | None] = lambda _: None,
) -> tuple[str, str] | None:
    """(reason, message) refusing one op, or None: kind, feature, key, scope, then the kind's rules.

    The scope rule is ``covers(State of the key)``, or the kind's own ``allowed(origin, role_of, policy)``.
    """
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
    if kind.allowed is not None:
        why = kind.allowed(origin, role_of, policy)
        if why is not None:
            return "out_of_scope", why
    elif state is None or not covers(state):
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


NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")  # as pocsync.core.manifest.NODE_ID_RE


def _templates_policy(value: dict[str, Any]) -> None:
    extra = set(value) - {"publishers"}
    if extra:
        raise ManifestError(f"policy.templates has unknown members {sorted(extra)}")
    pubs = value.get("publishers")
    if pubs is None and "publishers" in value:
        raise ManifestError("policy.templates.publishers must be a list of node ids (omit it for the default)")
    if pubs is not None and (
        not isinstance(pubs, list)
        or len(pubs) > 64
        or not all(isinstance(p, str) and NODE_ID_RE.match(p) for p in pubs)
        or pubs != sorted(set(pubs))
    ):
        raise ManifestError("policy.templates.publishers must be a sorted list of at most 64 distinct node ids")


POLICY_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "toy-note": _note_policy,
    "templates": _templates_policy,
    "freshness": checks.check_freshness_policy,
    held.FEATURE: held.check_policy,
}


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
