"""MISP organisations (``{"Organisation": {...}}``, one or a list): none becomes a PoC without a mapping.

Record fields: ``id, uuid, name, nationality, sector, type, contacts, description, local``.
Default mapping: ``name`` organisation, ``nationality`` (a country name or code) state, mail
addresses and E.164 numbers found in ``contacts``, kind ``technical``.  MISP does not say which
organisations are national PoCs: the mapping qualifies them (by ``uuid``/``id`` or a field match,
e.g. ``sector = "National CSIRT"``); without one every record is skipped with that reason.
The record id is the ``uuid`` (else ``id``).
"""

from __future__ import annotations

from collections.abc import Iterator

from pocsync.directory.adapters import Mapping, Record
from pocsync.errors import SourceError
from pocsync_adapters._common import load_json, text_id

DEFAULT = Mapping(
    fields={"state": "nationality", "organisation": "name", "notes": "description"},
    kind="technical",
    qualify_all=False,
    extract=("emails", "phones"),
    list_separator="",
    options={"extract_from": "contacts"},
    qualify_default_reason="misp-orgs takes no record without a mapping that qualifies national organisations",
)


class MispOrgsAdapter:
    name = "misp-orgs"
    option_keys = ()
    description = "MISP organisation JSON; only organisations the mapping qualifies become PoCs"
    reads = 'MISP {"Organisation": {...}} objects, one or a list'
    writes = None
    default_mapping = DEFAULT

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        doc = load_json(data, source)
        if isinstance(doc, dict) and "Organisation" in doc:
            items = [doc]
        elif isinstance(doc, list):
            items = doc
        else:
            raise SourceError(
                f'{source}: expected MISP organisation JSON {{"Organisation": {{...}}}} or a list of them'
            )
        for i, item in enumerate(items):
            org = item.get("Organisation") if isinstance(item, dict) else None
            if not isinstance(org, dict):
                yield Record(ref=f"{source}:[{i}]", raw={}, error='"Organisation" must be an object')
                continue
            oid = text_id(org.get("uuid")) or text_id(org.get("id"))
            raw = {k: v for k, v in org.items() if k != "contacts"}
            if isinstance(org.get("contacts"), str):
                raw["contacts"] = org["contacts"]
            yield Record(ref=f"{source}:[{i}] {oid or ''}".rstrip(), raw=raw, id=oid)
