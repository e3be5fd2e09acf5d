"""CSV: any header and delimiter, via a mapping; without one, pocsync's own CSV columns.

Without a mapping file the header must name at least ``state``, ``kind`` and ``organisation``
(case-insensitive, any order) out of :data:`COLUMNS` — the columns ``pocsync export --format csv``
writes.  ``key``, ``origin`` and ``hlc`` (provenance in an export) are ignored; other columns become
unknown entry fields, kept as text.  List columns separate items with ``;``; ``available_24_7``
takes yes/no (empty: absent); ``secure_channels`` is a JSON list.  A mapping file
(docs/adapters/csv.md) names other columns, the delimiter (``[options] delimiter``) and the
encoding (``[options] encoding``, default utf-8 with or without BOM).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from typing import Any, Iterator

from pocsync import exports
from pocsync.adapters import ENTRY_FIELDS, EXTRA, Mapping, Record
from pocsync.errors import SourceError

#: The columns read without a mapping (the export's header).
COLUMNS = exports.CSV_HEADER
REQUIRED = ("state", "kind", "organisation")
PROVENANCE = ("key", "origin", "hlc")  # an export's provenance columns: never stored inside an entry
MAX_FIELD = 1024 * 1024


def _unguard(value: str) -> str:
    """Undo the export's formula guard: ``'=x`` was written for ``=x``."""
    return value[1:] if value.startswith("'") and exports.needs_guard(value[1:]) else value


class CsvTableAdapter:
    name = "csv"
    description = "CSV table, one row per PoC; any header and delimiter through a mapping"
    reads = "CSV file (pocsync's columns, or any header with a mapping)"
    writes = "CSV with pocsync's documented header"
    default_mapping = Mapping(fields={f: f for f in ENTRY_FIELDS}, keep_unmapped=True)

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        encoding = str(mapping.options.get("encoding", "utf-8-sig"))
        delimiter = str(mapping.options.get("delimiter", ","))
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise SourceError(f"{source}: unknown encoding {encoding!r} in the mapping") from None
        if len(delimiter) != 1:
            raise SourceError(f"{source}: the delimiter must be one character, not {delimiter!r}")
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise SourceError(f"{source}: not {encoding} text (byte {exc.start}); name the encoding in a "
                              "mapping file: [options] encoding = \"cp1252\"") from None
        if "\x00" in text:
            raise SourceError(f"{source}: holds NUL characters: not a CSV text file")
        csv.field_size_limit(MAX_FIELD)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise SourceError(f"{source}: line 1 (header): {exc}") from None
        if not header or not any(h.strip() for h in header):
            raise SourceError(f"{source}: empty: no header line")
        cols = [h.strip().lstrip("\ufeff") for h in header]
        own_mapping = "file_fields" in mapping.options
        if own_mapping:
            wanted = list(mapping.options["file_fields"])
            missing = [p for p in wanted if p not in cols]
            if missing:
                raise SourceError(f"{source}: the header lacks the mapped column(s) {', '.join(missing)} "
                                  f"({len(cols)} column(s) found with delimiter {delimiter!r}; check [options] "
                                  "delimiter and encoding in the mapping)")
        else:
            cols = [c.lower() for c in cols]
            missing = [c for c in REQUIRED if c not in cols]
            if missing:
                raise SourceError(
                    f"{source}: CSV header not recognised: it lacks {', '.join(missing)}. Without a mapping "
                    f"file the columns are: {', '.join(COLUMNS)} (state, kind and organisation required); "
                    f"for other headers give --mapping FILE (docs/adapters/csv.md). The header found has "
                    f"{len(header)} column(s)")
        dup = sorted({c for c in cols if c and cols.count(c) > 1})
        if dup:
            raise SourceError(f"{source}: the header names {', '.join(dup)} more than once")
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                yield Record(ref=f"{source}:{line}", raw={}, error=f"broken CSV: {exc}")
                continue
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            ref = f"{source}:{line}"
            if len(row) > len(cols):
                yield Record(ref=ref, raw={}, error=f"{len(row)} cells but the header has {len(cols)}")
                continue
            raw: dict[str, Any] = {}
            for col, value in zip(cols, row):
                if not col or (not own_mapping and col in PROVENANCE):
                    continue
                raw[col] = _unguard(value.strip())
            if not own_mapping and raw.get("extra"):
                try:
                    extra = json.loads(raw.pop("extra"))
                    if not isinstance(extra, dict):
                        raise ValueError("not an object")
                except (ValueError, RecursionError) as exc:
                    yield Record(ref=ref, raw={}, error=f'column "extra" must hold a JSON object: {exc}')
                    continue
                raw[EXTRA] = extra
            raw.pop("extra", None) if not own_mapping else None
            yield Record(ref=ref, raw=raw)

    def write(self, rows: list[dict[str, Any]]) -> bytes:
        return exports.to_csv(rows).encode("utf-8")
