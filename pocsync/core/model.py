"""Entries: the deterministic structural rules applied on receipt (DESIGN §4, PROTOCOL §8).

These rules use no library data and no clock, so every node, on every version of
every library, refuses exactly the same entries.  Strict checks with pycountry,
phonenumbers and email-validator run only at the origin (``pocsync.intake``).
"""

from __future__ import annotations

import re
from typing import Any

from pocsync.core.hlc import is_hlc
from pocsync.errors import EntryError

KINDS = ("diplomatic", "technical")
STATE_RE = re.compile(r"^[A-Z]{3}$")
CONTACT_FIELDS = ("state", "kind", "organisation", "position", "person", "emails", "phones", "available_24_7",
                  "timezone", "languages", "secure_channels", "networks", "holder_epoch", "notes")
_STR_LISTS = ("emails", "phones", "languages", "networks")
_STRINGS = ("position", "person", "timezone", "notes")
ROLE_WORDS = ("cert", "csirt", "soc", "noc", "security", "info", "contact", "duty", "incident", "pgp", "abuse",
              "office", "team", "ops", "desk", "secretariat", "cyber", "diplo", "poc", "mfa", "ncsc", "admin")
_PERSONAL = re.compile(r"^[a-z]+[._][a-z]+$")


def parse_key(key: object) -> tuple[str, str]:
    """``"DEU/technical"`` → ``("DEU", "technical")``; raise EntryError(bad_key) otherwise."""
    if not isinstance(key, str) or key.count("/") != 1:
        raise EntryError(f"key {key!r} must be '<ISO 3166-1 alpha-3>/<kind>'", reason="bad_key", field="key")
    state, kind = key.split("/")
    if not STATE_RE.match(state) or kind not in KINDS:
        raise EntryError(f"key {key!r} must be '<ISO 3166-1 alpha-3>/diplomatic|technical'",
                         reason="bad_key", field="key")
    return state, kind


def check_structure(key: str, entry: object, *, cs_hlc: str) -> None:
    """Raise EntryError (with ``reason`` and ``field``) unless ``entry`` may stand at ``key``."""
    state, kind = parse_key(key)
    if not isinstance(entry, dict):
        raise EntryError(f"{key}: entry must be a JSON object", reason="not_an_object", field="entry")
    if entry.get("kind") not in KINDS:
        raise EntryError(f"{key}: kind must be one of {KINDS}", reason="unknown_kind", field="kind")
    for name, want in (("state", state), ("kind", kind)):
        if entry.get(name) != want:
            raise EntryError(f"{key}: entry {name} {entry.get(name)!r} does not match the key",
                             reason="key_mismatch", field=name)
    org = entry.get("organisation")
    if not isinstance(org, str) or not org.strip():
        raise EntryError(f"{key}: organisation is missing", reason="missing_organisation", field="organisation")
    for name in _STR_LISTS:
        v = entry.get(name)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise EntryError(f"{key}: {name} must be a list of strings", reason="bad_field", field=name)
    for name in _STRINGS:
        v = entry.get(name)
        if v is not None and not isinstance(v, str):
            raise EntryError(f"{key}: {name} must be a string", reason="bad_field", field=name)
    if "available_24_7" in entry and not isinstance(entry["available_24_7"], bool):
        raise EntryError(f"{key}: available_24_7 must be true or false", reason="bad_field", field="available_24_7")
    sc = entry.get("secure_channels")
    if sc is not None and (not isinstance(sc, list) or not all(isinstance(x, dict) for x in sc)):
        raise EntryError(f"{key}: secure_channels must be a list of objects", reason="bad_field",
                         field="secure_channels")
    if not (entry.get("emails") or entry.get("phones")):
        raise EntryError(f"{key}: at least one email or phone is required", reason="missing_contact",
                         field="emails")
    if kind == "technical" and entry.get("person") is not None:
        raise EntryError(f"{key}: a technical PoC names no individual; remove 'person'",
                         reason="person_on_technical", field="person")
    epoch = entry.get("holder_epoch")
    if not is_hlc(epoch) or epoch > cs_hlc:  # type: ignore[operator]
        raise EntryError(f"{key}: holder_epoch must be an hlc not after the change-set's ({cs_hlc})",
                         reason="bad_holder_epoch", field="holder_epoch")


def looks_personal(email: str) -> bool:
    """Heuristic: a local part of two alphabetic words joined by '.' or '_' with no role word.

    ``first.last@`` and ``f_last@`` look personal; ``cert@``, ``duty.officer@``,
    ``cyber.security@`` do not.
    """
    local = email.split("@", 1)[0].lower()
    if not _PERSONAL.match(local):
        return False
    return not any(w in local for w in ROLE_WORDS)


def receipt_warnings(entry: dict[str, Any], *, today_iso: str) -> list[dict[str, str]]:
    """Warnings kept and reported, never refusals: not 24/7, personal mailbox, expired key."""
    out: list[dict[str, str]] = []
    if entry.get("kind") == "technical":
        if entry.get("available_24_7") is not True:
            out.append({"code": "not_24_7", "field": "available_24_7",
                        "message": "a technical PoC is expected to be reachable 24/7"})
        for i, email in enumerate(entry.get("emails") or []):
            if isinstance(email, str) and looks_personal(email):
                out.append({"code": "personal_mailbox", "field": f"emails[{i}]",
                            "message": f"{email} looks like a personal mailbox; technical PoCs use functional ones"})
    for i, ch in enumerate(entry.get("secure_channels") or []):
        exp = ch.get("expires") if isinstance(ch, dict) else None
        if isinstance(exp, str) and exp[:10] < today_iso:
            out.append({"code": "expired_key", "field": f"secure_channels[{i}]",
                        "message": f"key expired on {exp}"})
    return out


def holder_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """True when the holder of the role changed: new entry, other person, or other mailboxes."""
    if not old:
        return True
    return old.get("person") != new.get("person") or set(old.get("emails") or []) != set(new.get("emails") or [])
