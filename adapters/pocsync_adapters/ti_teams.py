"""Trusted Introducer directory (``teams.json``): CSIRT records; national teams become technical PoCs.

Record fields as read (see docs/adapters/ti-teams.md): ``official_name``, ``short_name``,
``country`` (ISO alpha-2), ``host_organisation``, ``classification{code,name,since}``,
``constituency{types,countries,…}``, ``business_hours{hours,timezone}``, ``emails[{address,usage}]``,
``phones[{usage,number,timezone}]``, ``pgp_keys[{fingerprint,expires}]``.  Default: records whose
``constituency.types`` include ``national`` qualify, kind ``technical``; ``business_hours.hours``
of ``24/7`` sets ``available_24_7``.  The record id is ``short_name``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pocsync.directory.adapters import Mapping, Match, Record
from pocsync.errors import SourceError
from pocsync_adapters._common import load_json, text_id

DEFAULT = Mapping(
    fields={
        "state": "country",
        "organisation": "official_name",
        "emails": "emails[].address",
        "phones": "phones[].number",
        "timezone": "business_hours.timezone",
        "available_24_7": "business_hours.hours",
        "secure_channels": "pgp_channels",
    },
    kind="technical",
    qualify_all=False,
    qualify_match=(Match("constituency.types", "national"),),
    list_separator="",
)


def _channels(rec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k in rec.get("pgp_keys") or []:
        if isinstance(k, dict) and isinstance(k.get("fingerprint"), str):
            ch = {"type": "openpgp", "fingerprint": k["fingerprint"].replace(" ", "").upper()}
            if isinstance(k.get("expires"), str) and k["expires"]:
                ch["expires"] = k["expires"][:10]
            out.append(ch)
    return out


class TiTeamsAdapter:
    name = "ti-teams"
    option_keys = ()
    description = "Trusted Introducer teams.json; national CSIRTs become technical PoCs"
    reads = 'Trusted Introducer teams.json (a list, or {"teams": [...]})'
    writes = None
    default_mapping = DEFAULT

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        doc = load_json(data, source)
        if isinstance(doc, dict) and isinstance(doc.get("teams"), list):
            doc = doc["teams"]
        if not isinstance(doc, list):
            raise SourceError(f'{source}: expected a list of Trusted Introducer team records (or {{"teams": [...]}})')
        for i, rec in enumerate(doc):
            if not isinstance(rec, dict):
                yield Record(ref=f"{source}:[{i}]", raw={}, error="a team record must be a JSON object")
                continue
            tid = text_id(rec.get("short_name")) or text_id(rec.get("id"))
            given = rec.get("business_hours")
            hours = given if isinstance(given, dict) else {}
            raw = dict(rec)
            raw["pgp_channels"] = _channels(rec)
            if isinstance(hours.get("hours"), str) and hours["hours"].replace(" ", "").lower() not in ("24/7", "24x7"):
                raw["business_hours"] = {**hours, "hours": None}  # office hours: available_24_7 stays absent
            yield Record(ref=f"{source}:[{i}] {tid or ''}".rstrip(), raw=raw, id=tid)
