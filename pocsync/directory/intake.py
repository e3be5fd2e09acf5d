"""Strict validation at the origin, where secretariat staff enter or import entries (ADR 6).

Uses well-kept libraries: pycountry (ISO 3166-1 States, ISO 639-1 languages),
phonenumbers (E.164), email-validator (mail syntax) and zoneinfo (IANA time
zones).  These checks run only here: on receipt, other nodes apply the
deterministic structural rules of :mod:`pocsync.core.model`, so that a library
upgrade never splits the federation.

Invariants:

* :func:`validate_entry` never changes its argument; it returns a normalised
  deep copy.  Unknown fields are kept as they are.  ``holder_epoch`` is dropped
  (the store sets it) and known optional fields that are ``null`` are dropped.
* Normalisation: ``state`` upper-case, ``kind`` and languages lower-case,
  ``organisation``/``position``/``person`` and list items stripped of
  surrounding white space, mail addresses as email-validator normalises them,
  phones in E.164, duplicate addresses and numbers removed (first kept).
* Every refusal is an :class:`~pocsync.errors.EntryError` naming the record and
  the field in its message and in its ``record``/``field`` detail, e.g.
  ``record 3 (DEU/technical): field "phones[0]": '+49 30' is not a valid E.164 number``.
* Whatever is accepted here also passes :func:`pocsync.core.model.check_structure`
  once the store has set ``holder_epoch``.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from datetime import date
from functools import lru_cache
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError
from email_validator import validate_email as _validate_email

from pocsync.core import jsonc, model
from pocsync.core.hlc import ZERO
from pocsync.directory import freetext, openpgp
from pocsync.errors import EntryError, MalformedJSON

#: Reasons of refusals at the origin (besides those of :data:`pocsync.core.model.REASONS`).
REASONS = (
    "not_an_object",
    "bad_field",
    "unknown_state",
    "unknown_kind",
    "missing_organisation",
    "missing_contact",
    "person_on_technical",
    "bad_email",
    "bad_phone",
    "bad_timezone",
    "bad_language",
    "bad_text",
)

_OPTIONAL = tuple(f for f in model.CONTACT_FIELDS if f not in ("state", "kind", "organisation", "holder_epoch"))
_STRIPPED = ("position", "person")
_LANG_RE = re.compile(r"^[A-Za-z]{2}$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_MAX_CS_HLC = "9999999999999-9999"


#: Files of a zoneinfo directory that are not IANA zone names a PoC may use.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def entry_key(entry: dict[str, Any]) -> str:
    """The key ``"<state>/<kind>"`` of an entry (meaningful once validated)."""
    return f"{entry.get('state')}/{entry.get('kind')}"


class _Where:
    """Where a problem lies: the record and the entry's key, for messages and detail."""

    def __init__(self, record: str | None, entry: dict[str, Any]) -> None:
        self.record = record
        self.relabel(entry)

    def relabel(self, entry: dict[str, Any]) -> None:
        state, kind = entry.get("state"), entry.get("kind")
        self.key = f"{state if isinstance(state, str) else '?'}/{kind if isinstance(kind, str) else '?'}"

    def fail(self, field: str, message: str, reason: str) -> EntryError:
        where = f"record {self.record} ({self.key})" if self.record is not None else self.key
        return EntryError(
            f'{where}: field "{field}": {message}', reason=reason, field=field, record=self.record, key=self.key
        )


# --- identity -----------------------------------------------------------------------
def _state(where: _Where, value: object) -> str:
    if not isinstance(value, str):
        raise where.fail("state", f"{value!r} is not an ISO 3166-1 alpha-3 code", "unknown_state")
    state = value.strip().upper()
    if not model.STATE_RE.match(state) or pycountry.countries.get(alpha_3=state) is None:
        raise where.fail("state", f"{value!r} is not an ISO 3166-1 alpha-3 code", "unknown_state")
    return state


def _kind(where: _Where, value: object) -> str:
    kind = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(kind, str) or kind not in model.KINDS:
        raise where.fail("kind", f"{value!r} is not one of {', '.join(model.KINDS)}", "unknown_kind")
    return kind


def _organisation(where: _Where, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.fail("organisation", "the organisation is missing (a non-empty text)", "missing_organisation")
    return value.strip()


# --- scalar fields ------------------------------------------------------------------
def _scalars(where: _Where, e: dict[str, Any]) -> None:
    for name in model.STRING_FIELDS:
        if name in e and not isinstance(e[name], str):
            raise where.fail(name, f"must be a text, not {_json_type(e[name])}", "bad_field")
        if name in _STRIPPED and name in e:
            e[name] = e[name].strip()
    if "available_24_7" in e and not isinstance(e["available_24_7"], bool):
        raise where.fail("available_24_7", f"must be true or false, not {e['available_24_7']!r}", "bad_field")
    if "timezone" in e:
        _timezone(where, e["timezone"])


def _timezone(where: _Where, tz: str) -> None:
    known = _timezones()
    if tz in known:
        return
    if not known and tz not in _NOT_ZONES:  # no time zone database listed: fall back to loading the zone
        try:
            zoneinfo.ZoneInfo(tz)
            return
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise where.fail("timezone", f"{tz!r} is not an IANA time zone (e.g. 'Europe/Berlin')", "bad_timezone")


# --- list fields --------------------------------------------------------------------
def _str_list(where: _Where, e: dict[str, Any], name: str) -> list[str] | None:
    if name not in e:
        return None
    value = e[name]
    if not isinstance(value, list):
        raise where.fail(name, f"must be a list of texts, not {_json_type(value)}", "bad_field")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise where.fail(f"{name}[{i}]", f"must be a text, not {_json_type(item)}", "bad_field")
    return [item.strip() for item in value]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _email(where: _Where, field: str, addr: str) -> str:
    try:
        return _validate_email(addr, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise where.fail(field, f"{addr!r} is not a valid mail address: {exc}", "bad_email") from None


def _phone(where: _Where, field: str, num: str) -> str:
    if not num.startswith("+"):
        hint = ""
        country = pycountry.countries.get(alpha_3=where.key.split("/")[0]) if where.key[:1] != "?" else None
        if country is not None and phonenumbers.country_code_for_region(country.alpha_2):
            hint = f", then the country code: +{phonenumbers.country_code_for_region(country.alpha_2)} for {country.alpha_3}"
        raise where.fail(field, f"{num!r} is not a valid E.164 number (it must start with '+'{hint})", "bad_phone")
    try:
        parsed = phonenumbers.parse(num, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and parsed.extension:
        raise where.fail(field, f"{num!r} has an extension, which E.164 cannot hold", "bad_phone")
    if (
        parsed is not None
        and not phonenumbers.is_valid_number(parsed)
        and phonenumbers.is_possible_number_with_reason(parsed) == phonenumbers.ValidationResult.IS_POSSIBLE
    ):
        region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        country = pycountry.countries.get(alpha_2=region) if region and region != "ZZ" else None
        raise where.fail(
            field,
            f"{num!r} is not a valid E.164 number: its length is possible, but it is in no "
            f"range {country.name if country else f'+{parsed.country_code}'} assigns; check the digits",
            "bad_phone",
        )
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise where.fail(field, f"{num!r} is not a valid E.164 number", "bad_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _language(where: _Where, field: str, lang: str) -> str:
    if not _LANG_RE.match(lang) or pycountry.languages.get(alpha_2=lang.lower()) is None:
        raise where.fail(field, f"{lang!r} is not an ISO 639-1 language code (e.g. 'en')", "bad_language")
    return lang.lower()


def _lists(where: _Where, e: dict[str, Any]) -> None:
    checks = {"emails": _email, "phones": _phone, "languages": _language}
    for name in model.STR_LIST_FIELDS:
        items = _str_list(where, e, name)
        if items is None:
            continue
        check = checks.get(name)
        if check is not None:
            items = [check(where, f"{name}[{i}]", item) for i, item in enumerate(items)]
        e[name] = _unique(items)


def _secure_channels(where: _Where, e: dict[str, Any]) -> None:
    channels = e.get("secure_channels")
    if channels is None:
        return
    if not isinstance(channels, list):
        raise where.fail("secure_channels", f"must be a list of objects, not {_json_type(channels)}", "bad_field")
    for i, ch in enumerate(channels):
        if not isinstance(ch, dict):
            raise where.fail(f"secure_channels[{i}]", f"must be an object, not {_json_type(ch)}", "bad_field")
        if "expires" in ch and not _is_date(ch["expires"]):
            raise where.fail(
                f"secure_channels[{i}].expires", f"{ch['expires']!r} is not a date YYYY-MM-DD", "bad_field"
            )


def _public_key(where: _Where, e: dict[str, Any]) -> None:
    """``public_key`` (armored OpenPGP, at most 16 KiB of ASCII) must have the ``public_key_fingerprint`` given."""
    if e.get("public_key_fingerprint") is not None:
        try:
            e["public_key_fingerprint"] = openpgp.normalise_fingerprint(e["public_key_fingerprint"])
        except openpgp.PublicKeyError as exc:
            raise where.fail("public_key_fingerprint", exc.message, exc.reason) from None
    key = e.get("public_key")
    if key is None:
        return
    try:
        info = openpgp.parse(key)
    except openpgp.PublicKeyError as exc:
        raise where.fail("public_key", exc.message, exc.reason) from None
    fp = e.get("public_key_fingerprint")
    if fp is None:
        raise where.fail(
            "public_key_fingerprint",
            f"give the fingerprint you verified with the key's holder "
            f"(this key's is {info.fingerprint}); a public_key is published only with it",
            "missing_fingerprint",
        )
    if fp != info.fingerprint:
        raise where.fail(
            "public_key_fingerprint",
            f"{fp} is not the fingerprint of public_key ({info.fingerprint}): a wrong or substituted key?",
            "fingerprint_mismatch",
        )
    e["public_key"] = "\n".join(ln.rstrip(" \t\r") for ln in key.strip().split("\n")) + "\n"


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# --- whole entry --------------------------------------------------------------------
def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a text", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _strict_json(where: _Where, e: dict[str, Any]) -> None:
    for name, value in e.items():
        try:
            jsonc.dumps(value)
        except MalformedJSON as exc:
            raise where.fail(name, f"not allowed in pocsync JSON: {exc.message}", "bad_field") from None


def _free_text(where: _Where, value: Any, field: str, top: str) -> None:
    """Every string of the entry obeys :mod:`pocsync.directory.freetext` (issue 11, case 13); ``public_key`` is
    printable ASCII armor, checked by :mod:`pocsync.directory.openpgp` instead."""
    if top == "public_key" and field:
        return
    if isinstance(value, str):
        why = freetext.problem(value, multiline=top in freetext.MULTILINE_FIELDS)
        if why:
            raise where.fail(field, why, "bad_text")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _free_text(where, v, f"{field}[{i}]", top)
    elif isinstance(value, dict):
        for k, v in value.items():
            _free_text(where, k, f"{field}.{k}" if field else k, top or k)
            _free_text(where, v, f"{field}.{k}" if field else k, top or k)


def _roles(where: _Where, e: dict[str, Any]) -> None:
    if not (e.get("emails") or e.get("phones")):
        raise where.fail("emails", "at least one email or phone is required", "missing_contact")
    if e["kind"] == "technical" and "person" in e:
        raise where.fail("person", "a technical PoC names no individual; remove 'person'", "person_on_technical")


def _receipt_check(where: _Where, e: dict[str, Any]) -> None:
    """Belt and braces: what the origin accepts, every receiver must accept."""
    try:
        model.check_structure(entry_key(e), {**e, "holder_epoch": ZERO}, cs_hlc=_MAX_CS_HLC)
    except EntryError as exc:
        field = str(exc.detail.get("field", "entry"))
        raise where.fail(field, exc.message.split(": ", 1)[-1], exc.reason) from None


def _normalised_copy(entry: dict[str, Any]) -> dict[str, Any]:
    e = copy.deepcopy(entry)
    e.pop("holder_epoch", None)  # set by the store, never by hand
    for name in _OPTIONAL:
        if name in e and e[name] is None:
            del e[name]
    return e


def validate_entry(
    entry: object, *, record: str | None = None, today_iso: str
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Return (normalised copy, warnings) or raise EntryError naming ``record`` and the field.

    Warnings are :func:`pocsync.core.model.receipt_warnings` of the normalised
    entry, each ``{"code", "field", "message"}``.
    """
    if not isinstance(entry, dict):
        what = f"record {record}" if record is not None else "entry"
        raise EntryError(
            f"{what}: an entry must be a JSON object, not {_json_type(entry)}",
            reason="not_an_object",
            field="entry",
            record=record,
        )
    e = _normalised_copy(entry)
    where = _Where(record, e)
    e["state"] = _state(where, e.get("state"))
    e["kind"] = _kind(where, e.get("kind"))
    where.relabel(e)
    e["organisation"] = _organisation(where, e.get("organisation"))
    _strict_json(where, e)
    _free_text(where, e, "", "")
    _scalars(where, e)
    _lists(where, e)
    _secure_channels(where, e)
    _public_key(where, e)
    _roles(where, e)
    _receipt_check(where, e)
    return e, model.receipt_warnings(e, today_iso=today_iso)
