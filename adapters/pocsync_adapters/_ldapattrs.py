"""How pocsync entries sit in an LDAP directory (LDIF files and live servers share this).

Only attributes of the stock ``inetOrgPerson`` schema are used, so an export loads into any
OpenLDAP with the core, cosine and inetorgperson schemas: ``cn`` and ``sn`` (the key with ``-``),
``o`` organisation, ``title`` position, ``displayName`` person, ``mail``, ``telephoneNumber``,
``description`` notes, and pocsync's other fields as ``businessCategory`` values
``pocsync:<name>=<value>`` (``state``, ``kind``, ``24x7``, ``timezone``, ``language``,
``network``, ``secure-channel`` and ``extra`` (other fields) as JSON).  A directory that is not pocsync's own is read through
a mapping; ``c`` (ISO alpha-2) gives the State when no ``pocsync:state`` is present.
"""

from __future__ import annotations

import json
from typing import Any

from pocsync.directory import exports
from pocsync.directory.adapters import EXTRA, Mapping

OBJECT_CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson"]
DEFAULT_FIELDS = {
    "state": "state",
    "kind": "kind",
    "organisation": "o",
    "position": "title",
    "person": "displayname",
    "emails": "mail",
    "phones": "telephonenumber",
    "available_24_7": "pocsync.24x7",
    "timezone": "pocsync.timezone",
    "languages": "pocsync.language",
    "networks": "pocsync.network",
    "secure_channels": "pocsync.secure-channel",
    "notes": "description",
}
DEFAULT_MAPPING = Mapping(fields=dict(DEFAULT_FIELDS), list_separator="")
PREFIX = "pocsync:"


def raw_record(dn: str, attrs: dict[str, list[Any]]) -> dict[str, Any]:
    """Attributes (names lower-cased, values as lists of texts) plus ``dn``, ``state``, ``kind``."""
    raw: dict[str, Any] = {"dn": dn}
    for name, values in attrs.items():
        vals = []
        for v in values if isinstance(values, (list, tuple)) else [values]:
            if isinstance(v, bytes):
                try:
                    v = v.decode("utf-8")
                except UnicodeDecodeError:
                    continue  # binary attribute (a photo, a certificate): not a PoC field
            vals.append(str(v))
        raw.setdefault(name.lower(), []).extend(vals)
    for v in raw.get("businesscategory", []):
        if v.startswith(PREFIX) and "=" in v:
            k, _, val = v[len(PREFIX) :].partition("=")
            raw.setdefault(f"pocsync.{k.strip().lower()}", []).append(val)
    state = raw.get("pocsync.state") or raw.get("c")
    if state:
        raw["state"] = state
    for x in raw.pop("pocsync.extra", [])[:1]:
        try:
            extra = json.loads(x)
        except ValueError:
            extra = None
        if isinstance(extra, dict):
            raw[EXTRA] = extra
    if raw.get("pocsync.kind"):
        raw["kind"] = raw["pocsync.kind"]
    return raw


def rdn_value(key: str) -> str:
    return key.replace("/", "-")


def entry_attrs(row: dict[str, Any]) -> dict[str, list[str]]:
    """The LDAP attributes of one view row."""
    e = exports.safe_entry(row["entry"])  # every field is untrusted (ADR 15)
    cn = rdn_value(exports.safe_text(row["key"]))
    a: dict[str, list[str]] = {"objectClass": list(OBJECT_CLASSES), "cn": [cn], "sn": [cn]}
    for name, attr in (
        ("organisation", "o"),
        ("position", "title"),
        ("person", "displayName"),
        ("notes", "description"),
    ):
        if isinstance(e.get(name), str) and e[name]:
            a[attr] = [e[name]]
    for name, attr in (("emails", "mail"), ("phones", "telephoneNumber")):
        if e.get(name):
            a[attr] = [str(x) for x in e[name]]
    bc = [f"{PREFIX}state={e.get('state', '')}", f"{PREFIX}kind={e.get('kind', '')}"]
    if isinstance(e.get("available_24_7"), bool):
        bc.append(f"{PREFIX}24x7={'yes' if e['available_24_7'] else 'no'}")
    if e.get("timezone"):
        bc.append(f"{PREFIX}timezone={e['timezone']}")
    bc += [f"{PREFIX}language={x}" for x in e.get("languages") or []]
    bc += [f"{PREFIX}network={x}" for x in e.get("networks") or []]
    bc += [
        f"{PREFIX}secure-channel=" + json.dumps(ch, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for ch in e.get("secure_channels") or []
    ]
    extra = exports.extra_fields(e)
    if extra:
        bc.append(f"{PREFIX}extra=" + json.dumps(extra, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    a["businessCategory"] = bc
    return a
