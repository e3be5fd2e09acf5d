"""Mapping records to entries: what :class:`~pocsync.directory.mapping.Mapping` says, applied to a record.

:func:`map_record` gives the entry (not yet validated: it then passes the strict checks of
:mod:`pocsync.directory.intake`) or the reason a record is skipped; a value that cannot be mapped
raises :class:`~pocsync.errors.EntryError` naming ``record`` and ``field``.  Nothing else escapes
(the Hypothesis tests check this).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pycountry

from pocsync.directory import exports
from pocsync.directory.mapping import EXTRA, LIST_FIELDS, PGP_FIELD, Mapping, Record
from pocsync.errors import EntryError

#: Entry fields that have a column (or attribute) of their own in pocsync's exports: never taken from ``extra``
#: (public_key and its fingerprint have none there: they travel in ``extra``).
_COLUMN_FIELDS = exports.KNOWN
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(r"\+[0-9][0-9 .-]{5,20}[0-9]")
TRUE, FALSE = {"yes", "true", "1", "y", "24/7", "24x7"}, {"no", "false", "0", "n"}


def lookup(raw: dict[str, Any], path: str) -> Any:
    """``path`` in ``raw``: an exact key first, else dotted (``a.b``), ``a[].b`` over a list of objects."""
    if path in raw:
        return raw[path]
    if path.lower() in raw:  # LDAP attribute names are case-insensitive; readers store them lower-cased
        return raw[path.lower()]
    cur: Any = raw
    for part in path.split("."):
        if part.endswith("[]"):
            part = part[:-2]
            cur = cur.get(part) if isinstance(cur, dict) else None
            if not isinstance(cur, list):
                return None
            continue
        if isinstance(cur, list):
            cur = [x.get(part) for x in cur if isinstance(x, dict) and x.get(part) is not None]
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
        if cur is None:
            return None
    return cur


def _as_text(ref: str, name: str, value: Any, *, strip: bool = True) -> str | None:
    if isinstance(value, list):
        value = [v for v in value if v not in (None, "")]
        if not value:
            return None
        if len(value) > 1 and name in ("state", "kind", "organisation", "person"):
            raise _fail(ref, name, f"has {len(value)} values where one is expected")
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(ref, name, "is not UTF-8 text") from None
    if isinstance(value, bool) or value is None:
        return None if value is None else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise _fail(ref, name, f"must be a text, not {type(value).__name__}")
    if not value.strip():
        return None
    return value.strip() if strip else value


def _as_list(ref: str, name: str, value: Any, sep: str) -> list[str]:
    """A list field: a list's items as they are; a text split at ``sep``."""
    split = sep and not isinstance(value, list)
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, item in enumerate(items):
        text = _as_text(ref, f"{name}[{i}]", item)
        if text is None:
            continue
        out.extend(x.strip() for x in (text.split(sep) if split else [text]) if x.strip())
    return out


def _fail(ref: str, field_: str, message: str, reason: str = "bad_field") -> EntryError:
    return EntryError(f'record {ref}: field "{field_}": {message}', reason=reason, field=field_, record=ref)


# English names in everyday use (UN and regional lists, mail clients) that ISO 3166-1 spells otherwise.
_STATE_ALIASES = {
    "uk": "GBR",
    "great britain": "GBR",
    "turkey": "TUR",
    "russia": "RUS",
    "republic of korea": "KOR",
    "ivory coast": "CIV",
    "holy see": "VAT",
    "vatican": "VAT",
    "cape verde": "CPV",
    "swaziland": "SWZ",
    "macedonia": "MKD",
    "dr congo": "COD",
    "drc": "COD",
    "democratic republic of the congo": "COD",
    "republic of the congo": "COG",
    "brunei": "BRN",
    "palestine": "PSE",
    "state of palestine": "PSE",
    "micronesia": "FSM",
    "east timor": "TLS",
    "burma": "MMR",
    "north korea": "PRK",
    "democratic people's republic of korea": "PRK",
    "czech republic": "CZE",
    "slovak republic": "SVK",
}


def state_code(ref: str, value: str) -> str:
    """ISO 3166-1 alpha-3 from alpha-3, alpha-2 or an English country name (pycountry, plus names in
    everyday use such as "Turkey", "Russia", "The Netherlands", "St Lucia")."""
    v = " ".join(value.split())
    low = v.casefold()
    if low.startswith("the "):
        v, low = v[4:], low[4:]
    if low.startswith(("st ", "st. ")):
        v = "Saint " + v.split(" ", 1)[1]
        low = v.casefold()
    if low in _STATE_ALIASES:
        return _STATE_ALIASES[low]
    country = None
    if len(v) == 3 and v.isalpha():
        country = pycountry.countries.get(alpha_3=v.upper())
    elif len(v) == 2 and v.isalpha():
        country = pycountry.countries.get(alpha_2=v.upper())
    else:
        try:
            country = pycountry.countries.lookup(v)
        except LookupError:
            country = None
    if country is None:
        raise _fail(
            ref,
            "state",
            f"{value!r} is not an ISO 3166-1 country code or English name (give the ISO code, e.g. BE or BEL)",
            "unknown_state",
        )
    return country.alpha_3


def _bool(ref: str, value: Any, words: dict[str, bool]) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _as_text(ref, "available_24_7", value)
    if text is None:
        return None
    if text.lower() in words:
        return words[text.lower()]
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise _fail(ref, "available_24_7", f"must be yes or no, not {text!r}")


def _channels(ref: str, value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        if isinstance(item, str):
            if not item.strip():
                continue
            try:
                item = json.loads(item)
            except ValueError:
                raise _fail(ref, f"secure_channels[{i}]", "is not a JSON object or list") from None
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    for i, ch in enumerate(out):
        if not isinstance(ch, dict):
            raise _fail(ref, f"secure_channels[{i}]", "must be an object")
    return out


def qualifies(rec: Record, m: Mapping) -> str | None:
    """``None`` if the record qualifies, else the reason it is skipped."""
    if m.qualify_all and not m.qualify_ids and not m.qualify_match:
        return None
    if rec.id is not None and rec.id in m.qualify_ids:
        return None
    for match in m.qualify_match:
        v = lookup(rec.raw, match.field)
        values = v if isinstance(v, list) else [v]
        if any(isinstance(x, (str, int)) and str(x).strip().lower() == match.value.lower() for x in values):
            return None
    if not m.qualify_ids and not m.qualify_match:
        return m.qualify_default_reason or "the mapping qualifies no record"
    rules = [f"id in {len(m.qualify_ids)} listed id(s)"] if m.qualify_ids else []
    rules += [f"{x.field} = {x.value!r}" for x in m.qualify_match]
    return "not national-level: matches none of " + "; ".join(rules)


def map_record(rec: Record, m: Mapping) -> dict[str, Any] | str:
    """The entry for ``rec`` (not yet validated), or a text: the reason the record is skipped.

    Raises EntryError naming the record and field when a value cannot be mapped.
    """
    if rec.error is not None:
        raise _fail(rec.ref, "record", rec.error, "bad_record")
    reason = qualifies(rec, m)
    if reason is not None:
        return reason
    if m.passthrough:
        return _passthrough(rec, m)
    e: dict[str, Any] = {}
    _map_fields(rec, m, e)
    for name in m.extract:
        _extract(rec, m, name, e)
    extra = rec.raw.get(EXTRA)
    if isinstance(extra, dict):
        for k, v in extra.items():
            if isinstance(k, str) and k not in _COLUMN_FIELDS:  # fields with no column travel in extra
                e.setdefault(k, v)
    if m.kind_field:
        skipped = _map_kind(rec, m, e)
        if skipped is not None:
            return skipped
    elif m.kind and "kind" not in e:
        e["kind"] = m.kind
    for k, v in m.defaults.items():
        e.setdefault(k, v)
    if isinstance(e.get("state"), str):
        e["state"] = state_code(rec.ref, e["state"])
    if m.network:
        e["networks"] = list(dict.fromkeys([*e.get("networks", []), m.network]))
    return e


def _passthrough(rec: Record, m: Mapping) -> dict[str, Any]:
    """A record that already is an entry (pocsync's own JSON): the mapping's defaults and network added."""
    e = {k: v for k, v in rec.raw.items() if k != "holder_epoch"}
    for k, v in m.defaults.items():
        e.setdefault(k, v)
    if m.network:
        given = e.get("networks")
        nets = given if isinstance(given, list) else []
        e["networks"] = list(dict.fromkeys([*nets, m.network]))
    return e


def _map_fields(rec: Record, m: Mapping, e: dict[str, Any]) -> None:
    """The mapped source fields (and, with ``keep_unmapped``, the others) into entry ``e``."""
    ref = rec.ref
    names = dict(m.fields)
    if m.keep_unmapped:
        for k in rec.raw:
            if isinstance(k, str) and k not in names.values() and k not in names and k and k != EXTRA:
                names.setdefault(k, k)
    for name, path in names.items():
        value = lookup(rec.raw, path)
        if value is None or value == "" or value == []:
            continue
        if name in LIST_FIELDS:
            items = _as_list(ref, name, value, m.list_separator)
            if name == PGP_FIELD:
                chans = [{"type": "openpgp", "fingerprint": fp.replace(" ", "").upper()} for fp in items]
                if chans:
                    e.setdefault("secure_channels", []).extend(chans)
            elif items:
                e[name] = items
        elif name == "available_24_7":
            b = _bool(ref, value, m.booleans)
            if b is not None:
                e[name] = b
        elif name == "secure_channels":
            chans = _channels(ref, value)
            if chans:
                e.setdefault("secure_channels", [])[:0] = chans
        else:
            text = _as_text(ref, name, value, strip=name != "notes")  # notes are kept as written (round trip)
            if text is not None:
                e[name] = text


def _extract(rec: Record, m: Mapping, name: str, e: dict[str, Any]) -> None:
    """Emails or phones (``name``) fished out of the record's free text, added to entry ``e``."""
    found: list[str] = []
    scan = [rec.raw.get(m.options["extract_from"])] if m.options.get("extract_from") else rec.raw.values()
    for v in scan:
        for text in v if isinstance(v, list) else [v]:
            if isinstance(text, str):
                found += (_EMAIL_RE if name == "emails" else _PHONE_RE).findall(text)
    if found:
        e[name] = list(
            dict.fromkeys([*e.get(name, []), *(re.sub(r"[ ()./-]", "", f) if name == "phones" else f for f in found)])
        )


def _map_kind(rec: Record, m: Mapping, e: dict[str, Any]) -> str | None:
    """The kind from the mapping's kind field into entry ``e``; or the reason the record is skipped."""
    assert m.kind_field is not None
    found = lookup(rec.raw, m.kind_field)
    values = [v for v in (found if isinstance(found, list) else [found]) if isinstance(v, (str, int))]
    mapped = [str(v).strip() for v in values if str(v).strip() in m.kind_map]
    raw_kind = mapped[0] if mapped else (str(values[0]).strip() if values else None)
    kind = m.kind_map.get(raw_kind or "", None) if raw_kind is not None else None
    if kind is None:
        kind = m.kind
    if kind == "skip":
        return f"{m.kind_field} = {raw_kind!r} is skipped by the mapping"
    if kind is None:
        raise _fail(rec.ref, m.kind_field, f"{raw_kind!r} is not mapped to a kind ([kind] map)", "unknown_kind")
    e["kind"] = kind
    return None
