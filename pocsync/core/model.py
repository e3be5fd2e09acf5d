"""Entries: the deterministic structural rules applied on receipt (PROTOCOL.md §7.1 and §8.2 rule 6, ADR 6).

Invariants:

* Pure: no I/O, no clock (today's date is a parameter), no library data
  (no pycountry, phonenumbers, email-validator, zoneinfo).  Only regular
  expressions over ASCII and JSON types, so every node on every version of every
  library refuses exactly the same entries, forever.  Strict checks run only at
  the origin (:mod:`pocsync.directory.intake`).
* Every refusal is an :class:`~pocsync.errors.EntryError` whose ``reason`` is one
  of :data:`REASONS` and whose ``field`` names the culprit.  Nothing else is
  raised for any JSON-like input.
* ``null`` for an optional field means the field is absent.
* Unknown fields are allowed and never dropped: these functions only read.
* Warnings (:func:`receipt_warnings`) are reported, never refusals.
"""

from __future__ import annotations

import re
from typing import Any

from pocsync.core.hlc import is_hlc
from pocsync.errors import EntryError

KINDS = ("diplomatic", "technical")
STATE_RE = re.compile(r"^[A-Z]{3}\Z")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")

#: White space for "non-empty" rules (PROTOCOL.md §7.1): a closed list, so that the rule does not
#: depend on the Unicode tables of a Python version (it equals str.isspace() of Python 3.11).
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def blank(text: str) -> bool:
    """True when ``text`` is empty or only :data:`WHITE_SPACE`."""
    return all(ch in WHITE_SPACE for ch in text)


#: Entry fields in the stable order used by reports.
CONTACT_FIELDS = (
    "state",
    "kind",
    "organisation",
    "position",
    "person",
    "emails",
    "phones",
    "available_24_7",
    "timezone",
    "languages",
    "secure_channels",
    "networks",
    "holder_epoch",
    "notes",
    "public_key",
    "public_key_fingerprint",
)

#: Every reason :func:`parse_key` and :func:`check_structure` may give.
REASONS = (
    "bad_key",
    "not_an_object",
    "key_mismatch",
    "unknown_kind",
    "missing_organisation",
    "missing_contact",
    "person_on_technical",
    "bad_field",
    "bad_holder_epoch",
)

#: Every warning code :func:`receipt_warnings` may give.
WARNING_CODES = ("not_24_7", "personal_mailbox", "expired_key")

STR_LIST_FIELDS = ("emails", "phones", "languages", "networks")
STRING_FIELDS = ("position", "person", "timezone", "notes")

#: Words that make a mailbox functional.  Short ones (three letters) count only as a
#: whole part of the local part; longer ones also inside a part (``itsecurity``).
ROLE_WORDS = (
    "cert",
    "csirt",
    "soc",
    "noc",
    "security",
    "info",
    "contact",
    "duty",
    "incident",
    "pgp",
    "abuse",
    "office",
    "team",
    "ops",
    "desk",
    "secretariat",
    "cyber",
    "diplo",
    "poc",
    "mfa",
    "ncsc",
    "admin",
)
_PERSONAL = re.compile(r"^([a-z]+)[._]([a-z]+)\Z")


def contact_fields() -> tuple[str, ...]:
    """The entry fields in a stable order (for reports)."""
    return CONTACT_FIELDS


# --- keys ---------------------------------------------------------------------------
def parse_key(key: object) -> tuple[str, str]:
    """``"DEU/technical"`` → ``("DEU", "technical")``; raise EntryError(bad_key) otherwise."""
    if not isinstance(key, str) or key.count("/") != 1:
        raise EntryError(f"key {key!r} must be '<ISO 3166-1 alpha-3>/<kind>'", reason="bad_key", field="key")
    state, kind = key.split("/")
    if not STATE_RE.match(state) or kind not in KINDS:
        raise EntryError(
            f"key {key!r} must be '<ISO 3166-1 alpha-3>/diplomatic|technical'", reason="bad_key", field="key"
        )
    return state, kind


# --- structure ----------------------------------------------------------------------
def _refuse(key: str, field: str, reason: str, message: str) -> EntryError:
    return EntryError(f"{key}: {message}", reason=reason, field=field)


def _check_identity(key: str, entry: dict[str, Any], state: str, kind: str) -> None:
    if entry.get("kind") not in KINDS:
        raise _refuse(key, "kind", "unknown_kind", f"kind {entry.get('kind')!r} is not one of {', '.join(KINDS)}")
    for name, want in (("state", state), ("kind", kind)):
        if entry.get(name) != want:
            raise _refuse(key, name, "key_mismatch", f"entry {name} {entry.get(name)!r} does not match the key")


def _check_types(key: str, entry: dict[str, Any]) -> None:
    org = entry.get("organisation")
    if not isinstance(org, str) or blank(org):
        raise _refuse(key, "organisation", "missing_organisation", "organisation must be a non-empty string")
    for name in STR_LIST_FIELDS:
        value = entry.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            raise _refuse(key, name, "bad_field", f"{name} must be a list of strings")
    for name in STRING_FIELDS:
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise _refuse(key, name, "bad_field", f"{name} must be a string")
    value = entry.get("available_24_7")
    if value is not None and not isinstance(value, bool):
        raise _refuse(key, "available_24_7", "bad_field", "available_24_7 must be true or false")
    value = entry.get("secure_channels")
    if value is not None and not (isinstance(value, list) and all(isinstance(x, dict) for x in value)):
        raise _refuse(key, "secure_channels", "bad_field", "secure_channels must be a list of objects")


def _check_roles(key: str, entry: dict[str, Any], kind: str) -> None:
    if not (entry.get("emails") or entry.get("phones")):
        raise _refuse(key, "emails", "missing_contact", "at least one email or phone is required")
    if kind == "technical" and entry.get("person") is not None:
        raise _refuse(key, "person", "person_on_technical", "a technical PoC names no individual; remove 'person'")


def _check_holder_epoch(key: str, entry: dict[str, Any], cs_hlc: str) -> None:
    epoch = entry.get("holder_epoch")
    if not is_hlc(epoch) or epoch > cs_hlc:  # type: ignore[operator]
        raise _refuse(
            key,
            "holder_epoch",
            "bad_holder_epoch",
            f"holder_epoch {epoch!r} must be an hlc not after the change-set's ({cs_hlc})",
        )


def check_structure(key: str, entry: object, *, cs_hlc: str) -> None:
    """Raise EntryError (``reason`` in :data:`REASONS`, ``field`` set) unless ``entry`` may stand at ``key``.

    Order of checks (the first failing one is reported): key, object, kind,
    state/kind against the key, organisation, field types, contact channel,
    person on a technical entry, holder_epoch.
    """
    state, kind = parse_key(key)
    if not isinstance(entry, dict):
        raise _refuse(key, "entry", "not_an_object", f"entry must be a JSON object, not {type(entry).__name__}")
    _check_identity(key, entry, state, kind)
    _check_types(key, entry)
    _check_roles(key, entry, kind)
    _check_holder_epoch(key, entry, cs_hlc)


# --- warnings -----------------------------------------------------------------------
def _is_role_part(part: str) -> bool:
    return any(part == w or (len(w) > 3 and w in part) for w in ROLE_WORDS)


def looks_personal(email: str) -> bool:
    """Heuristic for a mailbox of one person rather than of a function.

    The local part (before the last ``@``, lower-cased) looks personal when it is
    exactly two ASCII-alphabetic parts joined by one ``.`` or ``_`` (``first.last``,
    ``f.last``, ``first_last``) and neither part is a role word of
    :data:`ROLE_WORDS`.  A part is a role word when it equals one, or contains one
    of four letters or more (``itsecurity``, ``teamlead``); three-letter words
    (``soc``, ``ops``, …) count only as a whole part so that names such as
    ``hopson`` are not mistaken for roles.  Anything else — a single word,
    digits, hyphens, three or more parts, non-ASCII letters — is not flagged:
    the rule prefers missing a personal mailbox to crying wolf, and stays ASCII
    so that it never depends on the Unicode tables of a Python version.
    """
    if not isinstance(email, str) or "@" not in email:
        return False
    match = _PERSONAL.match(email.rsplit("@", 1)[0].lower())
    return match is not None and not any(_is_role_part(p) for p in match.groups())


def _warning(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "message": message}


def _technical_warnings(entry: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    if entry.get("available_24_7") is not True:
        out.append(_warning("not_24_7", "available_24_7", "a technical PoC is expected to be reachable 24/7"))
    emails = entry.get("emails")
    for i, email in enumerate(emails if isinstance(emails, list) else []):
        if looks_personal(email):
            out.append(
                _warning(
                    "personal_mailbox",
                    f"emails[{i}]",
                    f"{email} looks like a personal mailbox; technical PoCs use functional ones",
                )
            )
    return out


def _expiry_warnings(entry: dict[str, Any], today_iso: str) -> list[dict[str, str]]:
    out = []
    channels = entry.get("secure_channels")
    for i, ch in enumerate(channels if isinstance(channels, list) else []):
        expires = ch.get("expires") if isinstance(ch, dict) else None
        if isinstance(expires, str) and DATE_RE.match(expires) and expires[:10] < today_iso:
            out.append(_warning("expired_key", f"secure_channels[{i}]", f"key expired on {expires[:10]}"))
    return out


def receipt_warnings(entry: dict[str, Any], *, today_iso: str) -> list[dict[str, str]]:
    """Warnings kept and reported, never refusals, in a deterministic order.

    ``not_24_7``: a technical entry without ``available_24_7: true``.
    ``personal_mailbox``: a technical entry with a mailbox :func:`looks_personal`.
    ``expired_key``: a ``secure_channels`` item whose ``expires`` (``YYYY-MM-DD``)
    is before ``today_iso``; an ``expires`` not in that form is ignored here.
    """
    if not isinstance(entry, dict):
        return []
    out = _technical_warnings(entry) if entry.get("kind") == "technical" else []
    return out + _expiry_warnings(entry, today_iso)


# --- holder -------------------------------------------------------------------------
def holder_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """True when the holder of the role changed: no old entry, other ``person``, or another set of ``emails``."""
    if not old:
        return True
    return old.get("person") != new.get("person") or _email_set(old) != _email_set(new)


def _email_set(entry: dict[str, Any]) -> frozenset[str]:
    emails = entry.get("emails")
    return frozenset(e for e in emails if isinstance(e, str)) if isinstance(emails, list) else frozenset()
