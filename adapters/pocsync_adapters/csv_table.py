"""CSV: any header and delimiter, via a mapping; without one, pocsync's own CSV columns.

Without a mapping file the header must name at least ``state``, ``kind`` and ``organisation``
(case-insensitive, any order) out of :data:`COLUMNS` — the columns ``pocsync export --format csv``
writes.  ``key``, ``origin``, ``hlc`` (provenance in an export) and ``last_modified``, ``last_verified``,
``last_confirmed`` (derived freshness) are ignored; other columns become
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
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pocsync.directory import exports
from pocsync.directory.adapters import ENTRY_FIELDS, EXTRA, Mapping, Record
from pocsync.errors import SourceError

#: The columns read without a mapping (the export's header).
COLUMNS = exports.CSV_HEADER
REQUIRED = ("state", "kind", "organisation")
# an export's provenance and derived freshness columns: never stored inside an entry
PROVENANCE = ("key", "origin", "hlc", *exports.FRESHNESS)
MAX_FIELD = 1024 * 1024


def _unguard(value: str) -> str:
    """Undo the export's formula guard: ``'=x`` was written for ``=x`` (and ``''x`` for ``'x``)."""
    return exports.unguard(value)


class CsvTableAdapter:
    name = "csv"
    option_keys = ("delimiter", "encoding")
    description = "CSV table, one row per PoC; any header and delimiter through a mapping"
    reads = "CSV file (pocsync's columns, or any header with a mapping)"
    writes = "CSV with pocsync's documented header"
    default_mapping = Mapping(fields={f: f for f in ENTRY_FIELDS}, keep_unmapped=True)

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        text, delimiter = _decode(data, mapping, source)
        csv.field_size_limit(MAX_FIELD)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise SourceError(f"{source}: line 1 (header): {exc}") from None
        if not header or not any(h.strip() for h in header):
            raise SourceError(f"{source}: empty: no header line")
        own_mapping = "file_fields" in mapping.options
        cols = _columns(header, mapping, source, delimiter, own_mapping=own_mapping)
        notes_col = mapping.fields.get("notes", "notes") if own_mapping else "notes"
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
            yield _record(f"{source}:{line}", row, cols, own_mapping=own_mapping, notes_col=notes_col)

    def write(self, rows: list[dict[str, Any]]) -> bytes:
        return exports.to_csv(rows).encode("utf-8")


def _is_json(text: str) -> bool:
    """Whether a file given as CSV is in fact a JSON document (only to name the mistake; never parsed further)."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _decode(data: bytes, mapping: Mapping, source: str) -> tuple[str, str]:
    """The source as text in the mapping's encoding, and the delimiter; SourceError on a file that is no CSV text."""
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
    except LookupError:  # a codec that is not a text encoding (rot13, base64, hex …)
        raise SourceError(f"{source}: {encoding!r} in the mapping is not a text encoding") from None
    except UnicodeError as exc:
        raise SourceError(
            f"{source}: not {encoding} text (byte {getattr(exc, 'start', '?')}); name the encoding in a "
            'mapping file: [options] encoding = "cp1252"'
        ) from None
    if "\x00" in text:
        raise SourceError(f"{source}: holds NUL characters: not a CSV text file")
    if text.lstrip()[:1] in ("{", "[") and _is_json(text):
        raise SourceError(
            f"{source} holds JSON, not CSV: give entries as JSON to `pocsync entry put`, or a "
            "pocsync JSON export (or a JSON list of entries) to `entry import --adapter json`"
        )
    return text, delimiter


def _columns(header: list[str], mapping: Mapping, source: str, delimiter: str, *, own_mapping: bool) -> list[str]:
    """The column names: those the mapping file names (matched despite changed capitals or spaces), or
    pocsync's own (lower-cased); SourceError when the header lacks one or names one twice."""
    cols = [h.strip().lstrip("\ufeff") for h in header]
    if own_mapping:
        wanted = list(mapping.options["file_fields"])
        for p in wanted:  # a header whose capitalisation or spacing changed between exports
            if p not in cols:
                near = [
                    i for i, c in enumerate(cols) if " ".join(c.split()).casefold() == " ".join(p.split()).casefold()
                ]
                if len(near) == 1:
                    cols[near[0]] = p
        missing = [p for p in wanted if p not in cols]
        if missing:
            raise SourceError(
                f"{source}: the header lacks the mapped column(s) {', '.join(missing)} "
                f"({len(cols)} column(s) found with delimiter {delimiter!r}; check [options] "
                "delimiter and encoding in the mapping)"
            )
    else:
        cols = [c.lower() for c in cols]
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise SourceError(
                f"{source}: CSV header not recognised: it lacks {', '.join(missing)}. Without a mapping "
                f"file the columns are: {', '.join(COLUMNS)} (state, kind and organisation required); "
                f"for other headers give --mapping FILE (docs/adapters/csv.md). The header found has "
                f"{len(header)} column(s)"
            )
    counts = Counter(cols)
    dup = sorted(c for c, n in counts.items() if c and n > 1)  # linear: a header may be very wide
    if dup:
        raise SourceError(f"{source}: the header names {', '.join(dup)} more than once")
    return cols


def _record(ref: str, row: list[str], cols: list[str], *, own_mapping: bool, notes_col: str) -> Record:
    """One non-empty row as a record (or a broken record naming why)."""
    while len(row) > len(cols) and not row[-1].strip():  # spreadsheets pad rows with empty cells
        row.pop()
    if len(row) > len(cols):
        return Record(ref=ref, raw={}, error=f"{len(row)} cells but the header has {len(cols)}")
    raw: dict[str, Any] = {}
    for col, value in zip(cols, row):
        if not col or (not own_mapping and col in PROVENANCE):
            continue
        raw[col] = _unguard(value if col == notes_col else value.strip())  # notes keep their spaces
    if own_mapping:
        return Record(ref=ref, raw=raw)
    if str(raw.get("extra", "")).strip():
        try:
            extra = json.loads(raw.pop("extra"))
            if not isinstance(extra, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError) as exc:
            return Record(ref=ref, raw={}, error=f'column "extra" must hold a JSON object: {exc}')
        raw[EXTRA] = extra
    raw.pop("extra", None)
    for col in exports.LISTS:  # a list the export wrote as JSON (items with ';')
        cell = raw.get(col)
        if isinstance(cell, str) and cell.startswith("["):
            try:
                items = json.loads(cell)
            except (ValueError, RecursionError):
                continue
            if isinstance(items, list) and all(isinstance(x, str) for x in items):
                raw[col] = items
    return Record(ref=ref, raw=raw)
