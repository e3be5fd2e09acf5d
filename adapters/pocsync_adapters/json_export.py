"""JSON: pocsync's own export (``pocsync.export/v1``), or a JSON list of entries as ``entry put`` takes.

Records keep every entry field as it is (unknown ones too); provenance (``key``, ``origin``,
``hlc``, ``holder_epoch``) is never stored inside an entry: the key is checked against the entry's
state and kind, the rest is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pocsync.core import jsonc
from pocsync.directory import exports
from pocsync.directory.adapters import Mapping, Record
from pocsync.errors import MalformedJSON, SourceError


class JsonExportAdapter:
    name = "json"
    option_keys = ()
    description = "pocsync's own JSON export (pocsync.export/v1) or a JSON list of entries"
    reads = "pocsync.export/v1 document, or a JSON array of entries"
    writes = "pocsync.export/v1 document"
    default_mapping = Mapping(passthrough=True)

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        try:
            doc = jsonc.loads(data)
        except MalformedJSON as exc:
            raise SourceError(f"{source}: {exc.message}") from None
        if isinstance(doc, dict) and "entries" in doc:
            if doc.get("type") != "pocsync.export/v1":
                raise SourceError(f"{source}: type {doc.get('type')!r} is not pocsync.export/v1")
            items = doc["entries"]
            if not isinstance(items, list):
                raise SourceError(f'{source}: "entries" must be a list')
            for i, item in enumerate(items):
                ref = f"{source}:entries[{i}]"
                if not isinstance(item, dict) or not isinstance(item.get("entry"), dict):
                    yield Record(ref=ref, raw={}, error='must be an object with an "entry" object')
                    continue
                entry, key = item["entry"], item.get("key")
                if key is not None and key != f"{entry.get('state')}/{entry.get('kind')}":
                    yield Record(ref=ref, raw={}, error=f"key {key!r} does not match the entry's state and kind")
                    continue
                yield Record(ref=ref, raw=entry, id=key if isinstance(key, str) else None)
        elif isinstance(doc, list):
            for i, entry in enumerate(doc):
                ref = f"{source}:[{i}]"
                if not isinstance(entry, dict):
                    yield Record(ref=ref, raw={}, error="an entry must be a JSON object")
                    continue
                yield Record(ref=ref, raw=entry)
        elif isinstance(doc, dict):
            yield Record(ref=f"{source}:entry", raw=doc)
        else:
            raise SourceError(
                f"{source}: expected a pocsync.export/v1 document or a list of entries, not a JSON {type(doc).__name__}"
            )

    def write(self, rows: list[dict[str, Any]]) -> bytes:
        return exports.to_json(rows)
