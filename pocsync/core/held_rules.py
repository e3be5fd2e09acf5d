"""The federation's policy for held changes and the receipt rules of the hold ops (PROTOCOL.md §16.1, §16.2).

:mod:`pocsync.core.held` re-exports every name here; the sweep and the origin's own rules live there.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from pocsync.core import hlc as hlcmod
from pocsync.core.keys import ed25519_public_from_b64
from pocsync.errors import EntryError, ManifestError, PocsyncError

FEATURE = "held-changes"
HOLD_SECONDS_DEFAULT = 86_400
HOLD_SECONDS_MAX = 90 * 86_400
REF_RE = re.compile(r"^sha256:[0-9a-f]{64}#(0|[1-9][0-9]{0,3})\Z")
STAFF_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}\Z")
NODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
STAFF_CONTEXT = b"pocsync.held-approve/v1\n"
#: Reasons a peer refuses a hold op with (receipt rules, §16.2).
RECEIPT_REASONS = ("bad_hold", "bad_staff_signature")


# --- the policy (§16.1) ------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """``policy.held-changes`` of the current manifest, with the manifest's UN nodes."""

    hold_ms: int = HOLD_SECONDS_DEFAULT * 1000
    since: str | None = None  # puts with an hlc below are never held
    un_nodes: frozenset[str] = frozenset()
    staff: tuple[tuple[str, str, str], ...] = ()  # (origin, name, public b64)

    def staff_key(self, origin: str, name: str) -> str | None:
        return next((pub for o, n, pub in self.staff if o == origin and n == name), None)


def policy_of(manifest: Any) -> Policy | None:
    """The guard's policy under ``manifest``, or ``None`` while the feature is off."""
    if FEATURE not in manifest.features:
        return None
    raw = manifest.policy.get(FEATURE, {})
    staff = tuple(
        sorted((o, k["name"], k["public"]) for o, keys in (raw.get("staff_keys") or {}).items() for k in keys)
    )
    return Policy(
        hold_ms=raw.get("hold_seconds", HOLD_SECONDS_DEFAULT) * 1000,
        since=raw.get("since"),
        un_nodes=frozenset(n for n, info in manifest.nodes.items() if info.role == "un"),
        staff=staff,
    )


def check_policy(value: dict[str, Any]) -> None:
    """Validate ``policy.held-changes`` (raises ManifestError)."""
    extra = set(value) - {"hold_seconds", "since", "staff_keys"}
    if extra:
        raise ManifestError(f"policy.held-changes has unknown members {sorted(extra)}")
    n = value.get("hold_seconds", HOLD_SECONDS_DEFAULT)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= HOLD_SECONDS_MAX:
        raise ManifestError(f"policy.held-changes.hold_seconds must be an integer from 1 to {HOLD_SECONDS_MAX}")
    if "since" in value and not hlcmod.is_hlc(value["since"]):
        raise ManifestError("policy.held-changes.since must be an hlc like 1763800000000-0000")
    staff = value.get("staff_keys", {})
    if not isinstance(staff, dict):
        raise ManifestError("policy.held-changes.staff_keys must be an object of node id -> list of keys")
    for origin, keys in staff.items():
        if not NODE_RE.match(origin) or not isinstance(keys, list) or not keys:
            raise ManifestError(f"policy.held-changes.staff_keys.{origin} must be a non-empty list of keys")
        names = []
        for k in keys:
            if (
                not isinstance(k, dict)
                or set(k) != {"name", "public"}
                or not isinstance(k["name"], str)
                or not STAFF_NAME_RE.match(k["name"])
            ):
                raise ManifestError(
                    f'policy.held-changes.staff_keys.{origin}: each key is {{"name": '
                    f'{STAFF_NAME_RE.pattern}, "public": base64 Ed25519}}'
                )
            try:
                ed25519_public_from_b64(k["public"])
            except PocsyncError:
                raise ManifestError(
                    f"policy.held-changes.staff_keys.{origin}.{k['name']}: not an Ed25519 public key in base64"
                ) from None
            names.append(k["name"])
        if len(set(names)) != len(names):
            raise ManifestError(f"policy.held-changes.staff_keys.{origin}: names must be distinct")


# --- receipt rules of the hold ops (§16.2) ------------------------------------------------
def staff_message(key: str, put_ref: str) -> bytes:
    """What a staff key signs to approve the held put ``put_ref`` of ``key``."""
    return STAFF_CONTEXT + key.encode() + b"\n" + put_ref.encode() + b"\n"


def check_op(raw: dict[str, Any], cs_hlc: str, policy: dict[str, Any]) -> None:
    """The receipt rules of ``notice``/``object``/``approve``/``release`` (raise EntryError)."""
    allowed = {"op", "key", "put"} | ({"staff"} if raw.get("op") == "approve" else set())
    extra = set(raw) - allowed
    if extra:
        raise EntryError(f"{raw.get('op')} has unknown members {sorted(extra)}", reason="bad_hold", field="op")
    ref = raw.get("put")
    if not isinstance(ref, str) or not REF_RE.match(ref):
        raise EntryError("put must be the held put's ref '<change-set id>#<op index>'", reason="bad_hold", field="put")
    if "staff" in raw:
        check_staff(raw["key"], ref, raw["staff"], policy.get(FEATURE, {}))


def check_staff(key: str, ref: str, staff: object, policy: dict[str, Any]) -> None:
    if (
        not isinstance(staff, dict)
        or set(staff) != {"origin", "name", "sig"}
        or not all(isinstance(staff[k], str) for k in staff)
    ):
        raise EntryError('staff must be {"origin", "name", "sig"}', reason="bad_hold", field="staff")
    keys = (policy.get("staff_keys") or {}).get(staff["origin"], [])
    pub = next((k["public"] for k in keys if k["name"] == staff["name"]), None)
    if pub is None:
        raise EntryError(
            f"no staff key {staff['name']!r} is listed for {staff['origin']!r} in the manifest",
            reason="bad_staff_signature",
            field="staff",
        )
    try:
        sig = base64.b64decode(staff["sig"].encode("ascii"), validate=True)
        if len(sig) != 64:
            raise ValueError
        ed25519_public_from_b64(pub).verify(sig, staff_message(key, ref))
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        raise EntryError(
            f"the staff signature of {staff['name']!r} does not verify", reason="bad_staff_signature", field="staff"
        ) from None
