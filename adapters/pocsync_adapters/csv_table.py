"""A CSV table, one row per PoC — the format most secretariats keep in a spreadsheet.

Header (case-insensitive; columns in any order; unknown columns become unknown entry fields,
kept as text): ``state, kind, organisation, position, person, emails, phones, available_24_7,
timezone, languages, networks, notes``.  List columns separate items with ``;``.
``available_24_7`` takes yes/no, true/false or 1/0.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pocsync.errors import EntryError

LIST_COLUMNS = ("emails", "phones", "languages", "networks")
TRUE, FALSE = {"yes", "true", "1", "y"}, {"no", "false", "0", "n", ""}


class CsvTableAdapter:
    name = "csv"
    description = "CSV table, one row per PoC, ';' between list items"

    def read(self, data: bytes) -> list[dict[str, Any]]:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EntryError(f"CSV is not UTF-8 (byte {exc.start})", reason="bad_input") from None
        rows = list(csv.DictReader(io.StringIO(text)))
        out = []
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            entry: dict[str, Any] = {}
            for col, value in row.items():
                if col is None:
                    raise EntryError(f"CSV line {n} has more cells than the header", reason="bad_input")
                col = col.strip().lower()
                value = (value or "").strip()
                if col in LIST_COLUMNS:
                    items = [v.strip() for v in value.split(";") if v.strip()]
                    if items:
                        entry[col] = items
                elif col == "available_24_7":
                    if value.lower() not in TRUE | FALSE:
                        raise EntryError(f"CSV line {n}: available_24_7 must be yes or no, not {value!r}",
                                         reason="bad_input")
                    entry[col] = value.lower() in TRUE
                elif col == "state":
                    entry[col] = value.upper()
                elif value:
                    entry[col] = value
            out.append(entry)
        return out
