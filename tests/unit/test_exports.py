"""Exports: vCard 4.0 round-trips every contact field; CSV has the documented header; JSON round-trips."""

from __future__ import annotations

import csv
import io
import json

import vobject

from pocsync.directory import divergence, exports

ENTRY = {
    "state": "DEU",
    "kind": "diplomatic",
    "organisation": "Fictional MFA, cyber (example)",
    "position": "Cyber coordinator",
    "person": "A. Example",
    "emails": ["a@example.org", "b@example.org"],
    "phones": ["+493012345678"],
    "available_24_7": False,
    "timezone": "Europe/Berlin",
    "languages": ["de", "en"],
    "networks": ["eu-cyber-ambassadors", "osce-cbm"],
    "notes": "Reachable; office hours, CET",
    "secure_channels": [{"type": "openpgp", "fingerprint": "AB" * 20, "expires": "2027-01-31"}],
}
TECH = {
    "state": "UKR",
    "kind": "technical",
    "organisation": '=HYPERLINK("x")',
    "emails": ["cert@example.org"],
    "phones": ["+380441234567"],
    "available_24_7": True,
}
ROWS = [
    {
        "key": "DEU/diplomatic",
        "entry": ENTRY,
        "origin": "eu",
        "hlc": "1763800000123-0000",
        "cs_id": "sha256:a",
        "index": 0,
        "seq": 1,
        "author": "staff",
    },
    {
        "key": "UKR/technical",
        "entry": TECH,
        "origin": "osce",
        "hlc": "1763800000200-0000",
        "cs_id": "sha256:b",
        "index": 0,
        "seq": 1,
        "author": "staff",
    },
]


def test_vcard_round_trips_every_contact_field() -> None:
    text = exports.to_vcard(ROWS)
    cards = list(vobject.readComponents(text))
    assert len(cards) == 2 and all(c.version.value == "4.0" for c in cards)
    back = {c["key"]: c["entry"] for c in exports.parse_vcards(text)}
    for field, value in ENTRY.items():
        assert back["DEU/diplomatic"][field] == value, field
    assert back["UKR/technical"]["available_24_7"] is True and "person" not in back["UKR/technical"]
    assert cards[0].kind.value == "individual" and cards[1].kind.value == "org"


def test_csv_has_the_documented_header_and_guards_formulas() -> None:
    rows = list(csv.reader(io.StringIO(exports.to_csv(ROWS))))
    assert tuple(rows[0]) == exports.CSV_HEADER
    d = dict(zip(rows[0], rows[1]))
    assert (
        d["emails"] == "a@example.org; b@example.org" and d["available_24_7"] == "no" and d["phones"] == "+493012345678"
    )
    assert json.loads(d["secure_channels"]) == ENTRY["secure_channels"]
    u = dict(zip(rows[0], rows[2]))
    assert u["organisation"].startswith("'=") and u["phones"] == "+380441234567"


def test_json_export_round_trips() -> None:
    doc = json.loads(exports.to_json(ROWS))
    assert doc["type"] == "pocsync.export/v1" and doc["entries"][0]["entry"] == ENTRY
    assert doc["entries"][1]["provenance"]["origin"] == "osce"


def test_divergence_field_by_field_and_dropped_once_agreed() -> None:
    a = {**ENTRY}
    b = {**ENTRY, "person": "B. Example", "emails": list(reversed(ENTRY["emails"]))}
    versions = {
        "DEU/diplomatic": [{"origin": "eu", "op": "put", "entry": a}, {"origin": "osce", "op": "put", "entry": b}],
        "UKR/technical": [
            {"origin": "osce", "op": "put", "entry": TECH},
            {"origin": "eu", "op": "delete", "entry": None},
        ],
    }
    report = divergence.divergences(versions)
    assert report == [
        {
            "key": "DEU/diplomatic",
            "origins": ["eu", "osce"],
            "fields": {"person": {"eu": "A. Example", "osce": "B. Example"}},
        }
    ]  # emails compared as sets
    versions["DEU/diplomatic"][1]["entry"] = {**b, "person": "A. Example"}
    assert divergence.divergences(versions) == []
    assert divergence.networks_by_state(versions) == {
        "DEU": {"diplomatic": ["eu", "osce"]},
        "UKR": {"technical": ["osce"]},
    }
