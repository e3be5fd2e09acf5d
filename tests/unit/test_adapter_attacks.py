"""Hostile sources and mapping files (attack review of issue 14): only documented errors escape."""

from __future__ import annotations

import pytest

from pocsync.directory import adapters
from pocsync.directory.adapters import Record
from pocsync.errors import ConfigError, SourceError

CSV = b"state,kind,organisation,emails\nAUT,technical,Example CSIRT (fictional),duty@example.org\n"


@pytest.mark.parametrize("encoding", ["rot13", "base64", "hex", "zlib"])
def test_a_mapping_naming_a_non_text_codec_is_a_source_error(encoding: str) -> None:
    m = adapters.load("csv").default_mapping.merged(adapters.parse_mapping({"options": {"encoding": encoding}}))
    with pytest.raises(SourceError, match="not a text encoding"):
        list(adapters.load("csv").read(CSV, mapping=m, source="s.csv"))


@pytest.mark.parametrize(
    "options,word",
    [
        ({"extract_from": ["contacts"]}, "extract_from must be a text"),
        ({"encoding": 8}, "encoding must be a text"),
        ({"delimiter": [";"]}, "delimiter must be a text"),
        ({"timeout_seconds": "soon"}, "timeout_seconds must be a whole number"),
        ({"timeout_seconds": True}, "timeout_seconds must be a whole number"),
        ({"timeout_seconds": 0}, "between 1 and 3600"),
        ({"starttls": "yes"}, "starttls must be true or false"),
        ({"password_file": 5}, "password_file must be a text"),
    ],
)
def test_mapping_options_of_the_wrong_type_are_refused_when_read(options: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        adapters.parse_mapping({"options": options})


def test_options_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match="options"):
        adapters.parse_mapping({"options": ["x"]})


def test_extract_from_a_list_never_escapes_as_type_error() -> None:
    misp = adapters.load("misp-orgs")
    with pytest.raises(ConfigError):
        misp.default_mapping.merged(
            adapters.parse_mapping({"options": {"extract_from": ["contacts"]}, "qualify": {"all": True}})
        )
    # and the adapter's own text option still works
    m = misp.default_mapping.merged(adapters.parse_mapping({"qualify": {"all": True}}))
    rec = Record(ref="r", raw={"name": "X", "nationality": "Austria", "contacts": "duty@example.org"})
    assert adapters.map_record(rec, m)["emails"] == ["duty@example.org"]


# --- writers: every field untrusted, and the round trip keeps it ---------------------------------
from pocsync.directory import intake  # noqa: E402

BASE = {"state": "AUT", "kind": "technical", "organisation": "Example CSIRT (fictional)", "emails": ["at@example.org"]}


def _row(entry: dict) -> dict:
    e, _ = intake.validate_entry(entry, today_iso="2026-01-01")
    return {
        "key": intake.entry_key(e),
        "entry": e,
        "origin": "eu",
        "hlc": "1763800000123-0000",
        "cs_id": "sha256:x",
        "author": "a",
    }


def _round_trip(fmt: str, entry: dict) -> list:
    a = adapters.load(fmt)
    row = _row(entry)
    data = a.write([row])
    out = []
    for rec in a.read(data, mapping=a.default_mapping, source="s"):
        out.append(
            intake.validate_entry(adapters.map_record(rec, a.default_mapping), record=rec.ref, today_iso="2026-01-01")[
                0
            ]
        )
    return [row["entry"]], out


@pytest.mark.parametrize("fmt", ["csv", "json", "vcard", "ldif"])
@pytest.mark.parametrize("notes", ["'=1+1", "'hello", "''=x", "'", "  padded notes  ", "=cmd|' /C calc'!A0"])
def test_round_trip_keeps_notes_exactly(fmt: str, notes: str) -> None:
    want, got = _round_trip(fmt, {**BASE, "notes": notes})
    assert got == want


@pytest.mark.parametrize("col", ["organisation", "notes", "position"])
@pytest.mark.parametrize("value", ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "'=1"])
def test_csv_export_never_starts_a_cell_with_a_formula(col: str, value: str) -> None:
    import csv
    import io

    e = {**BASE, "kind": "diplomatic", col: value}
    # as a member node may have signed it: receivers do not validate (ADR 6), so no intake here
    row = {
        "key": "AUT/diplomatic",
        "entry": e,
        "origin": "eu",
        "hlc": "1763800000123-0000",
        "cs_id": "sha256:x",
        "author": "a",
    }
    text = adapters.load("csv").write([row]).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    cell = rows[0][col]
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    # a formula start is guarded; a TAB or CR (forbidden in free text) is shown as U+FFFD instead
    assert cell.startswith("'") or cell.startswith("\ufffd=")


def test_a_very_wide_csv_header_is_read_in_linear_time() -> None:
    """50 000 columns (340 kB) took over two minutes when duplicates were found with list.count."""
    cols = ",".join(f"c{i}" for i in range(50_000))
    data = f"state,kind,organisation,{cols},c7\nAUT,technical,x\n".encode()
    with pytest.raises(SourceError, match="names c7 more than once"):
        list(adapters.load("csv").read(data, mapping=adapters.load("csv").default_mapping, source="w.csv"))
    data = f"state,kind,organisation,{cols}\nAUT,technical,x\n".encode()
    assert len(list(adapters.load("csv").read(data, mapping=adapters.load("csv").default_mapping, source="w.csv"))) == 1


@pytest.mark.parametrize("fmt", ["csv", "json", "vcard", "ldif"])
@pytest.mark.parametrize("networks", [["eu;osce"], ["a", "b;c", "d,e"], ["[x]"], ["eu-csirts", "n2"]])
def test_round_trip_keeps_network_names_holding_the_list_separator(fmt: str, networks: list) -> None:
    want, got = _round_trip(fmt, {**BASE, "networks": networks})
    assert got == want
