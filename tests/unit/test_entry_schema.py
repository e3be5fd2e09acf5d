"""docs/entry.schema.json, pocsync/core/model.py (receipt rules) and pocsync/directory/intake.py (origin) agree.

The schema documents the receipt rules for a second implementation; `jsonschema` is used here, in
the tests only (core.model stays free of validation libraries, ADR 6).  Every vector of
tests/vectors/entries.json is judged by all three, and every field of the schema is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pocsync.core import model
from pocsync.directory import intake
from pocsync.errors import EntryError

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "docs" / "entry.schema.json").read_text())
VECTORS = json.loads((ROOT / "tests" / "vectors" / "entries.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=None)
CASES = VECTORS["cases"]


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert set(SCHEMA["properties"]) == set(model.CONTACT_FIELDS)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_schema_and_receipt_rules_agree(case: dict) -> None:
    try:
        model.check_structure(case["key"], case["entry"], cs_hlc=VECTORS["cs_hlc"])
        reason = None
    except EntryError as exc:
        reason = exc.reason
    assert reason == case["reason"]
    if not VALIDATOR.is_valid(case["entry"]):  # what the schema refuses, every receiver refuses
        assert reason is not None
    if case["schema_applies"]:
        errors = list(VALIDATOR.iter_errors(case["entry"]))
        assert (not errors) == (reason is None), (reason, [e.message for e in errors])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_origin_rules_are_stricter_than_the_schema(case: dict) -> None:
    """What the origin accepts, the schema accepts (once the store set holder_epoch); what the schema
    refuses (other than holder_epoch, which the origin sets itself), the origin refuses."""
    try:
        normalised, _ = intake.validate_entry(case["entry"], today_iso="2026-01-01")
    except EntryError:
        normalised = None
    if normalised is not None:
        assert VALIDATOR.is_valid({**normalised, "holder_epoch": VECTORS["cs_hlc"]})
        model.check_structure(
            intake.entry_key(normalised), {**normalised, "holder_epoch": VECTORS["cs_hlc"]}, cs_hlc=VECTORS["cs_hlc"]
        )
    if case["schema_applies"] and case["reason"] not in (None, "bad_holder_epoch"):
        assert normalised is None, f"the origin accepted what every receiver refuses: {case['name']}"


def test_every_schema_field_is_exercised_by_a_vector() -> None:
    for name in SCHEMA["properties"]:
        accepted = [
            c
            for c in CASES
            if c["reason"] is None and isinstance(c["entry"], dict) and c["entry"].get(name) is not None
        ]
        refused = [
            c for c in CASES if c["reason"] is not None and c["field"] == name and not VALIDATOR.is_valid(c["entry"])
        ]
        assert accepted, f"no vector accepts an entry with {name}"
        if set(SCHEMA["properties"][name]) == {"description"}:  # no receipt rule (public_key, PROTOCOL.md 7.1)
            assert any(not isinstance(c["entry"][name], str) for c in accepted), name
            continue
        assert refused, f"no vector refuses an entry because of {name}"
    # and each rule of allOf
    assert any(c["reason"] == "missing_contact" for c in CASES)
    assert any(c["reason"] == "person_on_technical" for c in CASES)
    assert any(
        c["reason"] is None and c["entry"].get("person", 0) is None and c["key"].endswith("technical") for c in CASES
    )  # "person": null on a technical entry is absent, so allowed


def test_schema_and_code_agree_on_every_entry_of_every_vector() -> None:
    """Every `put` entry carried by any change-set vector is judged alike by the schema and the code."""
    seen = 0
    for path in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        v = json.loads(path.read_text())
        links = v.get("chain", []) + v.get("changesets", [])
        for link in links:
            payload = json.loads(link["payload"])
            for op in payload["ops"]:
                if op["op"] != "put":
                    continue
                try:
                    model.check_structure(op["key"], op["entry"], cs_hlc=payload["hlc"])
                    reason = None
                except EntryError as exc:
                    reason = exc.reason
                if reason in ("key_mismatch", "bad_key", "bad_holder_epoch"):
                    continue  # rules that need the op, not in the schema
                assert VALIDATOR.is_valid(op["entry"]) == (reason is None), (path.name, op["key"])
                seen += 1
    assert seen >= 10
