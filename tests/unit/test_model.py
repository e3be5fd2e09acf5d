"""The deterministic structural rules applied on receipt (pocsync.core.model).

All data here is invented: example.org mailboxes, fictional numbers, no real person.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.core import model
from pocsync.errors import EntryError

CS_HLC = "1700000000000-0005"
EPOCH = "1700000000000-0001"


def diplomatic(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "state": "DEU",
        "kind": "diplomatic",
        "organisation": "Ministry of Foreign Affairs (example)",
        "position": "Cyber Ambassador (example)",
        "person": "A. Example",
        "emails": ["cyber-diplo@example.org"],
        "phones": ["+49301234567"],
        "timezone": "Europe/Berlin",
        "languages": ["de", "en"],
        "holder_epoch": EPOCH,
    }
    e.update(over)
    return e


def technical(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "state": "DEU",
        "kind": "technical",
        "organisation": "National CERT (example)",
        "emails": ["cert@example.org"],
        "phones": ["+49301234567"],
        "available_24_7": True,
        "secure_channels": [{"type": "openpgp", "fingerprint": "0000 EXAMPLE", "expires": "2099-01-31"}],
        "networks": ["CSIRTs Network (example)"],
        "holder_epoch": EPOCH,
    }
    e.update(over)
    return e


def refused(key: str, entry: object, *, cs_hlc: str = CS_HLC) -> EntryError:
    with pytest.raises(EntryError) as info:
        model.check_structure(key, entry, cs_hlc=cs_hlc)
    return info.value


# --- parse_key ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, want", [("DEU/technical", ("DEU", "technical")), ("FRA/diplomatic", ("FRA", "diplomatic"))]
)
def test_parse_key_accepts(key: str, want: tuple[str, str]) -> None:
    assert model.parse_key(key) == want


@pytest.mark.parametrize(
    "key",
    [
        "deu/technical",
        "DE/technical",
        "DEUT/technical",
        "DEU/legal",
        "DEU",
        "DEU/technical/x",
        "/technical",
        "DEU/",
        "",
        None,
        7,
        ["DEU", "technical"],
        "DÉU/technical",
        "DEU/Technical",
    ],
)
def test_parse_key_refuses(key: object) -> None:
    with pytest.raises(EntryError) as info:
        model.parse_key(key)
    assert info.value.reason == "bad_key"
    assert info.value.detail["field"] == "key"


def test_check_structure_refuses_bad_key() -> None:
    err = refused("DEU/legal", technical())
    assert (err.reason, err.detail["field"]) == ("bad_key", "key")


# --- check_structure: accepted ---------------------------------------------------------------
def test_accepts_valid_diplomatic_and_technical() -> None:
    model.check_structure("DEU/diplomatic", diplomatic(), cs_hlc=CS_HLC)
    model.check_structure("DEU/technical", technical(), cs_hlc=CS_HLC)


def test_accepts_minimal_entries() -> None:
    for kind in model.KINDS:
        entry = {
            "state": "FRA",
            "kind": kind,
            "organisation": "Agency (example)",
            "phones": ["+33123456789"],
            "holder_epoch": EPOCH,
        }
        model.check_structure(f"FRA/{kind}", entry, cs_hlc=CS_HLC)


def test_unknown_fields_are_allowed_and_kept() -> None:
    entry = technical(x_regional_id="R-17", extra={"nested": [1, "two", None]})
    before = copy.deepcopy(entry)
    model.check_structure("DEU/technical", entry, cs_hlc=CS_HLC)
    assert entry == before


def test_null_optional_fields_mean_absent() -> None:
    entry = technical(
        position=None,
        person=None,
        timezone=None,
        notes=None,
        languages=None,
        networks=None,
        secure_channels=None,
        available_24_7=None,
        emails=None,
    )
    model.check_structure("DEU/technical", entry, cs_hlc=CS_HLC)


def test_entry_is_not_modified() -> None:
    entry = diplomatic()
    before = copy.deepcopy(entry)
    model.check_structure("DEU/diplomatic", entry, cs_hlc=CS_HLC)
    assert entry == before


# --- check_structure: refused ----------------------------------------------------------------
@pytest.mark.parametrize("entry", [None, [], "entry", 3, True])
def test_not_an_object(entry: object) -> None:
    err = refused("DEU/technical", entry)
    assert (err.reason, err.detail["field"]) == ("not_an_object", "entry")


@pytest.mark.parametrize(
    "entry, field", [(technical(state="FRA"), "state"), (technical(state=None), "state"), (diplomatic(), "kind")]
)
def test_key_mismatch(entry: dict, field: str) -> None:
    err = refused("DEU/technical", entry)
    assert (err.reason, err.detail["field"]) == ("key_mismatch", field)


def test_key_mismatch_when_state_missing() -> None:
    entry = technical()
    del entry["state"]
    err = refused("DEU/technical", entry)
    assert (err.reason, err.detail["field"]) == ("key_mismatch", "state")


@pytest.mark.parametrize("kind", ["legal", None, "Technical", 1, ["technical"]])
def test_unknown_kind(kind: object) -> None:
    err = refused("DEU/technical", technical(kind=kind))
    assert (err.reason, err.detail["field"]) == ("unknown_kind", "kind")


@pytest.mark.parametrize("org", [None, "", "   ", 5, ["Agency"]])
def test_missing_organisation(org: object) -> None:
    err = refused("DEU/technical", technical(organisation=org))
    assert (err.reason, err.detail["field"]) == ("missing_organisation", "organisation")


def test_missing_organisation_when_absent() -> None:
    entry = technical()
    del entry["organisation"]
    err = refused("DEU/technical", entry)
    assert (err.reason, err.detail["field"]) == ("missing_organisation", "organisation")


@pytest.mark.parametrize("over", [{"emails": [], "phones": []}, {"emails": None, "phones": None}])
def test_missing_contact(over: dict) -> None:
    err = refused("DEU/technical", technical(**over))
    assert (err.reason, err.detail["field"]) == ("missing_contact", "emails")


def test_missing_contact_when_both_absent() -> None:
    entry = technical()
    del entry["emails"], entry["phones"]
    err = refused("DEU/technical", entry)
    assert (err.reason, err.detail["field"]) == ("missing_contact", "emails")


@pytest.mark.parametrize("over", [{"emails": []}, {"phones": []}])
def test_one_contact_channel_is_enough(over: dict) -> None:
    model.check_structure("DEU/technical", technical(**over), cs_hlc=CS_HLC)


@pytest.mark.parametrize("person", ["A. Example", ""])
def test_person_on_technical(person: str) -> None:
    err = refused("DEU/technical", technical(person=person))
    assert (err.reason, err.detail["field"]) == ("person_on_technical", "person")


def test_person_on_diplomatic_is_fine() -> None:
    model.check_structure("DEU/diplomatic", diplomatic(person="A. Example"), cs_hlc=CS_HLC)


@pytest.mark.parametrize(
    "field, value",
    [
        ("emails", "cert@example.org"),
        ("emails", ["cert@example.org", 3]),
        ("emails", {"a": "b"}),
        ("phones", "+49301234567"),
        ("phones", [49301234567]),
        ("languages", "en"),
        ("languages", [None]),
        ("networks", [["nested"]]),
        ("networks", 1),
        ("position", 1),
        ("position", ["Head"]),
        ("timezone", {"name": "Europe/Berlin"}),
        ("notes", False),
        ("available_24_7", "yes"),
        ("available_24_7", 1),
        ("available_24_7", []),
        ("secure_channels", {"type": "openpgp"}),
        ("secure_channels", ["openpgp"]),
        ("secure_channels", "x"),
    ],
)
def test_bad_field(field: str, value: object) -> None:
    err = refused("DEU/technical", technical(**{field: value}))
    assert (err.reason, err.detail["field"]) == ("bad_field", field)


def test_bad_field_person_on_diplomatic() -> None:
    err = refused("DEU/diplomatic", diplomatic(person=7))
    assert (err.reason, err.detail["field"]) == ("bad_field", "person")


@pytest.mark.parametrize("epoch", ["1700000000000-0005", "0000000000000-0000", EPOCH])
def test_holder_epoch_not_after_changeset(epoch: str) -> None:
    model.check_structure("DEU/technical", technical(holder_epoch=epoch), cs_hlc=CS_HLC)


@pytest.mark.parametrize(
    "epoch",
    [
        "1700000000000-0006",
        "1700000000001-0000",
        "1700000000000",
        "soon",
        None,
        17,
        "1700000000000-0001 ",
        "１７00000000000-0001",
    ],
)
def test_bad_holder_epoch(epoch: object) -> None:
    err = refused("DEU/technical", technical(holder_epoch=epoch))
    assert (err.reason, err.detail["field"]) == ("bad_holder_epoch", "holder_epoch")


def test_bad_holder_epoch_when_absent() -> None:
    entry = technical()
    del entry["holder_epoch"]
    err = refused("DEU/technical", entry)
    assert (err.reason, err.detail["field"]) == ("bad_holder_epoch", "holder_epoch")


def test_reason_codes_are_listed() -> None:
    assert set(model.REASONS) == {
        "bad_key",
        "not_an_object",
        "key_mismatch",
        "unknown_kind",
        "missing_organisation",
        "missing_contact",
        "person_on_technical",
        "bad_field",
        "bad_holder_epoch",
    }


def test_messages_name_key_and_problem() -> None:
    err = refused("DEU/technical", technical(person="A. Example"))
    assert err.message.startswith("DEU/technical: ")
    assert "person" in err.message
    assert err.as_dict() == {"reason": "person_on_technical", "message": err.message, "field": "person"}


# --- receipt_warnings ------------------------------------------------------------------------
TODAY = "2026-03-15"


def codes(entry: dict) -> list[tuple[str, str]]:
    return [(w["code"], w["field"]) for w in model.receipt_warnings(entry, today_iso=TODAY)]


def test_no_warnings_for_good_entries() -> None:
    assert codes(technical()) == []
    assert codes(diplomatic()) == []


def test_warning_shape() -> None:
    (w,) = model.receipt_warnings(technical(available_24_7=False), today_iso=TODAY)
    assert set(w) == {"code", "field", "message"}
    assert all(isinstance(v, str) and v for v in w.values())


@pytest.mark.parametrize("value", [False, None, "yes"])
def test_not_24_7(value: object) -> None:
    assert codes(technical(available_24_7=value)) == [("not_24_7", "available_24_7")]


def test_not_24_7_when_absent() -> None:
    entry = technical()
    del entry["available_24_7"]
    assert codes(entry) == [("not_24_7", "available_24_7")]


def test_not_24_7_only_for_technical() -> None:
    assert codes(diplomatic(available_24_7=False)) == []


@pytest.mark.parametrize(
    "email",
    [
        "a.example@example.org",
        "first.last@example.org",
        "First_Last@example.org",
        "x.hopsample@example.org",
        "f.last@sub.example.org",
    ],
)
def test_personal_mailbox(email: str) -> None:
    assert codes(technical(emails=["cert@example.org", email])) == [("personal_mailbox", "emails[1]")]


@pytest.mark.parametrize(
    "email",
    [
        "cert@example.org",
        "duty.officer@example.org",
        "cyber.security@example.org",
        "soc.team@example.org",
        "noc_desk@example.org",
        "csirt.example@example.org",
        "incident.response@example.org",
        "itsecurity.example@example.org",
        "a.example2@example.org",
        "a-example@example.org",
        "a.b.example@example.org",
        "info.example@example.org",
        "ops.example@example.org",
        "pgp.keys@example.org",
        "not-an-address",
    ],
)
def test_functional_mailbox(email: str) -> None:
    assert codes(technical(emails=[email])) == []
    assert not model.looks_personal(email)


def test_personal_mailbox_only_for_technical() -> None:
    assert codes(diplomatic(emails=["a.example@example.org"])) == []


@pytest.mark.parametrize("expires", ["2026-03-14", "2020-01-01", "2026-03-14T23:59:59Z"])
def test_expired_key(expires: str) -> None:
    entry = technical(
        secure_channels=[{"type": "openpgp", "expires": "2099-01-01"}, {"type": "openpgp", "expires": expires}]
    )
    assert codes(entry) == [("expired_key", "secure_channels[1]")]


@pytest.mark.parametrize(
    "expires", ["2026-03-15", "2026-03-16", "2099-12-31", "soon", "15/03/2020", "", 20200101, None]
)
def test_key_not_expired(expires: object) -> None:
    assert codes(technical(secure_channels=[{"type": "openpgp", "expires": expires}])) == []


def test_expired_key_on_diplomatic_too() -> None:
    entry = diplomatic(secure_channels=[{"type": "openpgp", "expires": "2020-01-01"}])
    assert codes(entry) == [("expired_key", "secure_channels[0]")]


def test_warnings_in_stable_order() -> None:
    entry = technical(
        available_24_7=False, emails=["a.example@example.org"], secure_channels=[{"expires": "2020-01-01"}]
    )
    assert codes(entry) == [
        ("not_24_7", "available_24_7"),
        ("personal_mailbox", "emails[0]"),
        ("expired_key", "secure_channels[0]"),
    ]


# --- fields and holder ----------------------------------------------------------------------
def test_contact_fields_order() -> None:
    assert model.CONTACT_FIELDS == (
        "state",
        "kind",
        "organisation",
        "position",
        "person",
        "emails",
        "phones",
        "available_24_7",
        "timezone",
        "languages",
        "secure_channels",
        "networks",
        "holder_epoch",
        "notes",
        "public_key",
        "public_key_fingerprint",
    )
    assert model.contact_fields() == model.CONTACT_FIELDS


def test_holder_changed() -> None:
    old = diplomatic(emails=["cyber-diplo@example.org", "office@example.org"])
    assert model.holder_changed(None, old)
    assert model.holder_changed({}, old)
    assert not model.holder_changed(old, copy.deepcopy(old))
    assert not model.holder_changed(
        old,
        diplomatic(
            emails=["office@example.org", "cyber-diplo@example.org"],
            position="Other (example)",
            phones=["+33123456789"],
        ),
    )
    assert model.holder_changed(old, diplomatic(emails=["cyber-diplo@example.org"]))
    assert model.holder_changed(old, {**old, "person": "B. Example"})
    no_person = dict(old)
    del no_person["person"]
    assert model.holder_changed(old, no_person)


def test_holder_changed_tolerates_odd_values() -> None:
    assert model.holder_changed({"emails": [{"x": 1}]}, {"emails": "cert@example.org", "person": "A. Example"})
    assert not model.holder_changed({"emails": None}, {"emails": []})


# --- properties ------------------------------------------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["DEU/technical", "DEU/diplomatic", "FRA/technical", "deu/technical", "DEU/x", ""]) | st.text(
    max_size=16
)
field_values = {
    "state": st.sampled_from(["DEU", "FRA", "deu"]) | json_values,
    "kind": st.sampled_from(model.KINDS) | json_values,
    "organisation": st.sampled_from(["Agency (example)", ""]) | json_values,
    "emails": st.lists(st.sampled_from(["cert@example.org", "a.example@example.org"]), max_size=2) | json_values,
    "phones": st.lists(st.just("+49301234567"), max_size=2) | json_values,
    "available_24_7": st.booleans() | json_values,
    "secure_channels": st.lists(
        st.fixed_dictionaries({"expires": st.sampled_from(["2020-01-01", "2099-01-01"])}), max_size=2
    )
    | json_values,
    "holder_epoch": st.sampled_from([EPOCH, CS_HLC, "9999999999999-9999"]) | json_values,
}
for _name in ("position", "person", "timezone", "notes", "languages", "networks"):
    field_values[_name] = json_values
near_entries = st.fixed_dictionaries({}, optional=field_values)


@st.composite
def perturbed(draw: st.DrawFn) -> dict[str, Any]:
    """A valid entry with at most one field replaced or removed: reaches every rule and acceptance."""
    entry = draw(st.sampled_from([technical, diplomatic]))()
    name = draw(st.sampled_from(model.CONTACT_FIELDS + ("x_unknown",)))
    action = draw(st.sampled_from(["keep", "drop", "replace"]))
    if action == "drop":
        entry.pop(name, None)
    elif action == "replace":
        entry[name] = draw(field_values.get(name, json_values))
    return entry


# Valid-but-perturbed entries weighted up so that every rule and acceptance are reached often.
entries = st.one_of(
    perturbed(),
    perturbed(),
    perturbed(),
    near_entries,
    json_values,
    st.dictionaries(st.text(max_size=8), json_values, max_size=6),
)


def outcome(key: object, entry: object) -> tuple[str, Any] | None:
    try:
        model.check_structure(key, entry, cs_hlc=CS_HLC)  # type: ignore[arg-type]
    except EntryError as exc:
        assert exc.reason in model.REASONS
        assert isinstance(exc.detail.get("field"), str)
        return exc.reason, exc.detail.get("field")
    return None


@settings(max_examples=400, deadline=None)
@given(key=keys, entry=entries, own_key=st.sampled_from([True, True, True, False]))
def test_check_structure_is_deterministic_and_raises_only_entry_error(key: str, entry: object, own_key: bool) -> None:
    if own_key and isinstance(entry, dict):
        key = f"{entry.get('state')}/{entry.get('kind')}"
    before = copy.deepcopy(entry)
    first = outcome(key, entry)
    assert outcome(key, copy.deepcopy(entry)) == first
    assert entry == before


@settings(max_examples=200, deadline=None)
@given(entry=near_entries | st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_receipt_warnings_never_raise(entry: dict) -> None:
    first = model.receipt_warnings(entry, today_iso=TODAY)
    assert model.receipt_warnings(copy.deepcopy(entry), today_iso=TODAY) == first
    assert all(w["code"] in model.WARNING_CODES for w in first)
