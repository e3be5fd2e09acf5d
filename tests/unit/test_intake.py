"""Strict validation at the origin (pocsync.directory.intake).

All data here is invented: example.org mailboxes, fictional numbers, no real person.
"""

from __future__ import annotations

import copy
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.core import model
from pocsync.directory import intake
from pocsync.errors import EntryError

TODAY = "2026-03-15"
PHONE = "+49 30 1234567"  # fictional Berlin number that phonenumbers accepts as valid


def diplomatic(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "state": "DEU",
        "kind": "diplomatic",
        "organisation": "Ministry of Foreign Affairs (example)",
        "position": "Cyber Ambassador (example)",
        "person": "A. Example",
        "emails": ["cyber-diplo@example.org"],
        "phones": [PHONE],
        "timezone": "Europe/Berlin",
        "languages": ["de", "en"],
    }
    e.update(over)
    return e


def technical(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "state": "DEU",
        "kind": "technical",
        "organisation": "National CERT (example)",
        "emails": ["cert@example.org"],
        "phones": [PHONE],
        "available_24_7": True,
        "timezone": "Europe/Berlin",
        "languages": ["en"],
        "secure_channels": [{"type": "openpgp", "fingerprint": "0000 EXAMPLE", "expires": "2099-01-31"}],
        "networks": ["CSIRTs Network (example)"],
    }
    e.update(over)
    return e


def ok(entry: object, record: str | None = "1") -> tuple[dict, list[dict]]:
    return intake.validate_entry(entry, record=record, today_iso=TODAY)


def refused(entry: object, record: str | None = "3") -> EntryError:
    with pytest.raises(EntryError) as info:
        intake.validate_entry(entry, record=record, today_iso=TODAY)
    return info.value


def assert_refused(entry: object, reason: str, field: str, record: str = "3") -> EntryError:
    err = refused(entry, record)
    assert (err.reason, err.detail["field"], err.detail["record"]) == (reason, field, record)
    assert err.message.startswith(f"record {record} (")
    assert f'field "{field}"' in err.message
    return err


def test_example_phone_is_valid_for_phonenumbers() -> None:
    assert phonenumbers.is_valid_number(phonenumbers.parse(PHONE, None))


# --- accepted ----------------------------------------------------------------------------------
def test_accepts_and_normalises_diplomatic() -> None:
    raw = diplomatic(
        emails=["Cyber-Diplo@EXAMPLE.ORG", " office@example.org "],
        phones=["+33 1 23 45 67 89"],
        languages=["DE", "en"],
        person=" A. Example ",
    )
    clean, warnings = ok(raw)
    assert clean["emails"] == ["Cyber-Diplo@example.org", "office@example.org"]
    assert clean["phones"] == ["+33123456789"]
    assert clean["languages"] == ["de", "en"]
    assert clean["person"] == "A. Example"
    assert warnings == []
    assert intake.entry_key(clean) == "DEU/diplomatic"


def test_accepts_technical_and_passes_receipt_rules() -> None:
    clean, warnings = ok(technical())
    assert clean["phones"] == ["+49301234567"]
    assert warnings == []
    model.check_structure(
        intake.entry_key(clean), {**clean, "holder_epoch": "1700000000000-0000"}, cs_hlc="1700000000000-0000"
    )


def test_normalises_state_and_kind() -> None:
    clean, _ = ok(technical(state=" deu ", kind="Technical"))
    assert (clean["state"], clean["kind"]) == ("DEU", "technical")
    assert intake.entry_key(clean) == "DEU/technical"


def test_input_is_not_modified_and_unknown_fields_kept() -> None:
    raw = technical(x_regional_id="R-17", extra={"nested": [1, "two", None]})
    before = copy.deepcopy(raw)
    clean, _ = ok(raw)
    assert raw == before
    assert clean["x_regional_id"] == "R-17"
    assert clean["extra"] == {"nested": [1, "two", None]}
    clean["extra"]["nested"].append(3)
    assert raw == before


def test_holder_epoch_is_dropped() -> None:
    clean, _ = ok(technical(holder_epoch="1700000000000-0000"))
    assert "holder_epoch" not in clean


def test_null_optional_fields_are_dropped() -> None:
    clean, _ = ok(technical(person=None, position=None, notes=None, timezone=None, languages=None))
    assert not {"person", "position", "notes", "timezone", "languages"} & set(clean)


def test_duplicates_removed_after_normalisation() -> None:
    clean, _ = ok(technical(emails=["cert@example.org", "cert@EXAMPLE.org"], phones=[PHONE, "+49301234567"]))
    assert clean["emails"] == ["cert@example.org"]
    assert clean["phones"] == ["+49301234567"]


@pytest.mark.parametrize("over", [{"emails": []}, {"phones": []}])
def test_one_contact_channel_is_enough(over: dict) -> None:
    ok(technical(**over))


def test_message_without_record() -> None:
    err = refused(technical(phones=["+49 30"]), record=None)
    assert err.message == "DEU/technical: field \"phones[0]\": '+49 30' is not a valid E.164 number"
    assert err.detail["record"] is None


# --- warnings ----------------------------------------------------------------------------------
def test_warnings_include_receipt_warnings() -> None:
    _, warnings = ok(
        technical(
            available_24_7=False,
            emails=["a.example@example.org"],
            secure_channels=[{"type": "openpgp", "expires": "2020-01-01"}],
        )
    )
    assert [(w["code"], w["field"]) for w in warnings] == [
        ("not_24_7", "available_24_7"),
        ("personal_mailbox", "emails[0]"),
        ("expired_key", "secure_channels[0]"),
    ]
    assert all(set(w) == {"code", "field", "message"} for w in warnings)


# --- refused -----------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", [None, [], "DEU/technical", 3])
def test_not_an_object(entry: object) -> None:
    err = refused(entry)
    assert (err.reason, err.detail["field"], err.detail["record"]) == ("not_an_object", "entry", "3")
    assert err.message.startswith("record 3: ")


@pytest.mark.parametrize("state", ["XXX", "DE", "GERMANY", "", "D3U"])
def test_unknown_state(state: str) -> None:
    err = assert_refused(technical(state=state), "unknown_state", "state")
    assert repr(state) in err.message


@pytest.mark.parametrize("state", [None, 276, ["DEU"]])
def test_unknown_state_not_text(state: object) -> None:
    assert_refused(technical(state=state), "unknown_state", "state")


def test_unknown_state_when_absent() -> None:
    entry = technical()
    del entry["state"]
    err = assert_refused(entry, "unknown_state", "state")
    assert err.message.startswith("record 3 (?/technical)")


@pytest.mark.parametrize("kind", ["legal", "", None, 1])
def test_unknown_kind(kind: object) -> None:
    assert_refused(technical(kind=kind), "unknown_kind", "kind")


@pytest.mark.parametrize("org", [None, "", "  ", 7])
def test_missing_organisation(org: object) -> None:
    entry = technical(organisation=org)
    if org is None:
        del entry["organisation"]
    assert_refused(entry, "missing_organisation", "organisation")


def test_organisation_is_stripped() -> None:
    clean, _ = ok(technical(organisation="  National CERT (example) "))
    assert clean["organisation"] == "National CERT (example)"


@pytest.mark.parametrize("over", [{"emails": [], "phones": []}, {"emails": None, "phones": None}])
def test_missing_contact(over: dict) -> None:
    assert_refused(technical(**over), "missing_contact", "emails")


@pytest.mark.parametrize("person", ["A. Example", ""])
def test_person_on_technical(person: str) -> None:
    assert_refused(technical(person=person), "person_on_technical", "person")


@pytest.mark.parametrize(
    "addr",
    [
        "cert",
        "cert@",
        "@example.org",
        "cert@@example.org",
        "cert@example",
        "cert@localhost",
        "cert@example.test",
        "two words@example.org",
        "",
    ],
)
def test_bad_email(addr: str) -> None:
    err = assert_refused(technical(emails=["cert@example.org", addr]), "bad_email", "emails[1]")
    assert repr(addr) in err.message


@pytest.mark.parametrize(
    "num", ["+49 30", "+49 30 1", "+999 1234567", "+49 30 1234567 ext. 12", "+", "+not a number", ""]
)
def test_bad_phone(num: str) -> None:
    err = assert_refused(technical(phones=[num]), "bad_phone", "phones[0]")
    assert repr(num) in err.message


@pytest.mark.parametrize("num", ["030 1234567", "0049 30 1234567", "49301234567"])
def test_phone_must_start_with_plus(num: str) -> None:
    err = assert_refused(technical(phones=[num]), "bad_phone", "phones[0]")
    assert "'+'" in err.message


def test_phone_message_style() -> None:
    err = refused(technical(phones=["+49 30"]))
    assert err.message == "record 3 (DEU/technical): field \"phones[0]\": '+49 30' is not a valid E.164 number"


@pytest.mark.parametrize("tz", ["Europe/Berlin", "UTC", "America/New_York"])
def test_timezone_accepted(tz: str) -> None:
    clean, _ = ok(technical(timezone=tz))
    assert clean["timezone"] == tz


@pytest.mark.parametrize("tz", ["Europe/Atlantis", "CET+1", "berlin", "", "../../etc/passwd", "localtime"])
def test_bad_timezone(tz: str) -> None:
    assert_refused(technical(timezone=tz), "bad_timezone", "timezone")


@pytest.mark.parametrize("lang", ["xx", "eng", "english", "e", "", "e1"])
def test_bad_language(lang: str) -> None:
    assert_refused(technical(languages=["en", lang]), "bad_language", "languages[1]")


@pytest.mark.parametrize(
    "field, value, culprit",
    [
        ("emails", "cert@example.org", "emails"),
        ("emails", ["cert@example.org", 3], "emails[1]"),
        ("emails", "", "emails"),
        ("phones", {"x": PHONE}, "phones"),
        ("phones", [49301234567], "phones[0]"),
        ("languages", "en", "languages"),
        ("languages", [None], "languages[0]"),
        ("networks", "CSIRTs Network (example)", "networks"),
        ("networks", [["x"]], "networks[0]"),
        ("position", 1, "position"),
        ("notes", ["note"], "notes"),
        ("timezone", 1, "timezone"),
        ("available_24_7", "yes", "available_24_7"),
        ("available_24_7", 1, "available_24_7"),
        ("secure_channels", {"type": "openpgp"}, "secure_channels"),
        ("secure_channels", ["openpgp"], "secure_channels[0]"),
        ("secure_channels", [{"expires": "31/01/2099"}], "secure_channels[0].expires"),
        ("secure_channels", [{"expires": "2099-02-30"}], "secure_channels[0].expires"),
        ("x_extra", 1.5, "x_extra"),
    ],
)
def test_bad_field(field: str, value: object, culprit: str) -> None:
    assert_refused(technical(**{field: value}), "bad_field", culprit)


def test_bad_field_person_on_diplomatic() -> None:
    assert_refused(diplomatic(person=["A. Example"]), "bad_field", "person")


def test_as_dict_carries_record_field_and_key() -> None:
    d = refused(technical(timezone="Europe/Atlantis")).as_dict()
    assert d["reason"] == "bad_timezone"
    assert (d["record"], d["field"], d["key"]) == ("3", "timezone", "DEU/technical")


def test_reason_codes_are_listed() -> None:
    assert {"unknown_state", "bad_email", "bad_phone", "bad_timezone", "bad_language"} <= set(intake.REASONS)


# --- properties --------------------------------------------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
field_values = {
    "state": st.sampled_from(["DEU", "fra", "XXX"]) | json_values,
    "kind": st.sampled_from(model.KINDS) | json_values,
    "organisation": st.sampled_from(["Agency (example)", " "]) | json_values,
    "person": st.sampled_from(["A. Example"]) | json_values,
    "emails": st.lists(
        st.sampled_from(["cert@example.org", "A.Example@Example.org", "bad@", " x@example.org"]), max_size=2
    )
    | json_values,
    "phones": st.lists(st.sampled_from([PHONE, "+33 1 23 45 67 89", "+49 30", "030 1234567"]), max_size=2)
    | json_values,
    "timezone": st.sampled_from(["Europe/Berlin", "Mars/Base"]) | json_values,
    "languages": st.lists(st.sampled_from(["en", "FR", "xx"]), max_size=2) | json_values,
    "available_24_7": st.booleans() | json_values,
    "secure_channels": st.lists(
        st.fixed_dictionaries({"expires": st.sampled_from(["2020-01-01", "2099-01-01", "never"])}), max_size=2
    )
    | json_values,
    "holder_epoch": json_values,
}
field_values.update(
    position=st.text(max_size=10) | json_values,
    notes=st.text(max_size=10) | json_values,
    networks=st.lists(st.text(max_size=10), max_size=2) | json_values,
    x_unknown=json_values,
)


@st.composite
def perturbed(draw: st.DrawFn) -> dict[str, Any]:
    """A valid input with up to two fields replaced or removed: reaches every rule and acceptance."""
    entry = draw(st.sampled_from([technical, diplomatic]))()
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(field_values)))
        if draw(st.booleans()):
            entry.pop(name, None)
        else:
            entry[name] = draw(field_values[name])
    return entry


# Valid-but-perturbed inputs weighted up so that acceptance and every rule are reached often.
entries = st.one_of(
    perturbed(), perturbed(), perturbed(), st.fixed_dictionaries({}, optional=field_values), json_values
)


@settings(max_examples=300, deadline=None)
@given(entry=entries)
def test_validate_entry_raises_only_entry_error_and_accepted_entries_pass_receipt(entry: object) -> None:
    before = copy.deepcopy(entry)
    try:
        clean, warnings = ok(entry, record="9")
    except EntryError as exc:
        assert exc.reason in intake.REASONS
        assert exc.detail["record"] == "9"
        assert isinstance(exc.detail["field"], str)
    else:
        key = intake.entry_key(clean)
        model.check_structure(key, {**clean, "holder_epoch": "0000000000000-0000"}, cs_hlc="0000000000000-0000")
        assert ok(copy.deepcopy(clean), record="9") == (clean, warnings)  # normalising is idempotent
    assert entry == before


def test_every_demo_entry_passes_strict_validation() -> None:
    from pocsync.demo.data import SCENARIO

    for _node, _label, entries in SCENARIO:
        for e in entries:
            intake.validate_entry(e, today_iso="2026-11-22")


def test_a_phone_without_country_code_names_the_states_code() -> None:
    """Found trying it as a secretariat: '030 1234567' was refused without saying what to add."""
    e = {
        "state": "DEU",
        "kind": "technical",
        "organisation": "Example CERT (fictional)",
        "emails": ["cert@cert-deu.example.org"],
        "phones": ["030 1234567"],
    }
    with pytest.raises(EntryError, match=r"must start with '\+', then the country code: \+49 for DEU"):
        intake.validate_entry(e, record="r", today_iso="2026-11-23")


def test_a_well_formed_but_unassigned_number_says_so() -> None:
    """'+3221234567' looks like E.164; "not a valid E.164 number" alone sent staff hunting the format."""
    e = {
        "state": "BEL",
        "kind": "technical",
        "organisation": "Example CERT (fictional)",
        "emails": ["cert@cert-bel.example.org"],
        "phones": ["+3221234567"],
    }
    with pytest.raises(EntryError, match="in no range Belgium assigns; check the digits"):
        intake.validate_entry(e, record="r", today_iso="2026-11-23")
