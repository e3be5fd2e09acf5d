"""Strict validation at the origin, where secretariat staff enter or import entries (DESIGN §4).

Uses well-kept libraries: pycountry (ISO 3166-1 States, ISO 639-1 languages),
phonenumbers (E.164), email-validator (mail syntax) and zoneinfo (IANA time
zones).  These checks run only here: on receipt, other nodes apply the
deterministic structural rules of :mod:`pocsync.core.model` so that a library
upgrade never splits the federation.  Errors name the record and the field.
"""

from __future__ import annotations

import copy
import zoneinfo
from functools import lru_cache
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from pocsync.core import model
from pocsync.errors import EntryError


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def entry_key(entry: dict[str, Any]) -> str:
    return f"{entry.get('state')}/{entry.get('kind')}"


def _fail(record: str | None, key: str, field: str, message: str, reason: str) -> EntryError:
    where = f"record {record} ({key})" if record else key
    return EntryError(f'{where}: field "{field}": {message}', reason=reason, field=field, record=record)


def validate_entry(entry: object, *, record: str | None = None, today_iso: str) -> tuple[dict[str, Any], list[dict]]:
    """Return (normalised copy, warnings) or raise EntryError naming record and field."""
    if not isinstance(entry, dict):
        raise EntryError(f"record {record}: an entry must be a JSON object", reason="not_an_object",
                         record=record, field="entry")
    e = copy.deepcopy(entry)
    e.pop("holder_epoch", None)  # set by the store, never by hand
    key = entry_key(e)
    state = e.get("state")
    if not isinstance(state, str) or pycountry.countries.get(alpha_3=state.upper()) is None or state != state.upper():
        raise _fail(record, key, "state", f"{state!r} is not an ISO 3166-1 alpha-3 code", "unknown_state")
    if e.get("kind") not in model.KINDS:
        raise _fail(record, key, "kind", f"{e.get('kind')!r} is not one of {', '.join(model.KINDS)}", "unknown_kind")
    emails = e.get("emails") or []
    if not isinstance(emails, list):
        raise _fail(record, key, "emails", "must be a list of addresses", "bad_field")
    clean_emails = []
    for i, addr in enumerate(emails):
        try:
            clean_emails.append(validate_email(addr, check_deliverability=False).normalized)
        except (EmailNotValidError, TypeError) as exc:
            raise _fail(record, key, f"emails[{i}]", f"{addr!r} is not a valid address: {exc}", "bad_email") from None
    if "emails" in e:
        e["emails"] = clean_emails
    phones = e.get("phones") or []
    if not isinstance(phones, list):
        raise _fail(record, key, "phones", "must be a list of E.164 numbers", "bad_field")
    clean_phones = []
    for i, num in enumerate(phones):
        try:
            if not isinstance(num, str) or not num.strip().startswith("+"):
                raise phonenumbers.NumberParseException(0, "must start with +")
            parsed = phonenumbers.parse(num, None)
            if not phonenumbers.is_valid_number(parsed):
                raise phonenumbers.NumberParseException(0, "not a valid number")
        except phonenumbers.NumberParseException:
            raise _fail(record, key, f"phones[{i}]", f"{num!r} is not a valid E.164 number", "bad_phone") from None
        clean_phones.append(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    if "phones" in e:
        e["phones"] = clean_phones
    tz = e.get("timezone")
    if tz is not None and (not isinstance(tz, str) or tz not in _timezones()):
        raise _fail(record, key, "timezone", f"{tz!r} is not an IANA time zone", "bad_timezone")
    for i, lang in enumerate(e.get("languages") or []):
        if not isinstance(lang, str) or len(lang) != 2 or pycountry.languages.get(alpha_2=lang.lower()) is None:
            raise _fail(record, key, f"languages[{i}]", f"{lang!r} is not an ISO 639-1 code", "bad_language")
    try:
        model.check_structure(key, {**e, "holder_epoch": "0000000000000-0000"}, cs_hlc="9999999999999-9999")
    except EntryError as exc:
        field = exc.detail.get("field", "entry")
        raise _fail(record, key, field, exc.message.split(": ", 1)[-1], exc.reason) from None
    return e, model.receipt_warnings(e, today_iso=today_iso)
