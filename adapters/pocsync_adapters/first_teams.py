"""FIRST teams API (``{"data": [...]}``): member teams; none becomes a PoC unless the mapping says so.

Record fields: ``id, team, team-full, host, country, email, website, pgp-fingerprint, membership,
last-modified``.  Default mapping: ``team-full`` (else ``team``) organisation, ``country``
(alpha-2 or name) state, ``email``, ``pgp-fingerprint`` as an openpgp secure channel, kind
``technical``.  FIRST does not say which teams are national: a mapping must qualify them
(``[qualify] ids = [...]``); without one every record is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from pocsync.directory.adapters import Mapping, Record
from pocsync.errors import SourceError
from pocsync_adapters._common import load_json, text_id

DEFAULT = Mapping(
    fields={
        "state": "country",
        "organisation": "organisation_name",
        "emails": "email",
        "pgp_fingerprints": "pgp-fingerprint",
    },
    kind="technical",
    qualify_all=False,
    list_separator="",
    qualify_default_reason="first-teams takes no record without a mapping that qualifies national teams",
)


class FirstTeamsAdapter:
    name = "first-teams"
    option_keys = ()
    description = "FIRST teams API JSON; only teams the mapping qualifies become PoCs"
    reads = 'FIRST teams API response {"data": [...]}'
    writes = None
    default_mapping = DEFAULT

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        doc = load_json(data, source)
        items = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise SourceError(f'{source}: expected the FIRST teams API shape {{"data": [...]}}')
        for i, rec in enumerate(items):
            if not isinstance(rec, dict):
                yield Record(ref=f"{source}:data[{i}]", raw={}, error="a team record must be a JSON object")
                continue
            tid = text_id(rec.get("id"))
            raw = dict(rec)
            raw["organisation_name"] = rec.get("team-full") or rec.get("team")
            yield Record(ref=f"{source}:data[{i}] id {tid}", raw=raw, id=tid)
