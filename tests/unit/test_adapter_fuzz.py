"""Hypothesis fuzzes every file reader: random bytes and random valid-looking records.

Only the documented errors escape: SourceError from ``read`` (the source as a whole), EntryError
from mapping a record; and planning an import (mapping + strict validation + diff) never raises.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.directory import adapters, sources
from pocsync.errors import EntryError, SourceError

FILE_READERS = ["csv", "json", "vcard", "ldif", "ti-teams", "first-teams", "misp-orgs"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=12,
)
emails = st.sampled_from(["cert@example.org", "x@", "@", "a b@example.org", "", "duty@csirt.example.org"])
phones = st.sampled_from(["+4315123456", "+43 1", "12345", "", "+390612345678", "+49 (30) 1234"])
countries = st.sampled_from(["AT", "DE", "AUT", "Germany", "XX", "", "zz", "Italy", "FRA"])
words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


def _check(name: str, data: bytes) -> None:
    a = adapters.load(name)
    m = a.default_mapping
    try:
        records = list(a.read(data, mapping=m, source="fuzz"))
    except SourceError:
        return
    for rec in records:
        try:
            adapters.map_record(rec, m)
        except EntryError:
            pass
    # the whole import pipeline (validation, scope, duplicates, diff) reports, never raises
    p = sources.plan(
        records,
        m,
        source="fuzz",
        adapter=name,
        own={},
        tracked_keys={"AUT/technical": "x"},
        sync_deletes=True,
        in_scope=lambda s: s != "UKR",
        today_iso="2026-01-01",
    )
    assert p.records == len(records)
    try:
        sources.check_plan(p, strict=False)
    except (SourceError, EntryError):
        pass


@pytest.mark.parametrize("name", FILE_READERS)
@SETTINGS
@given(data=st.binary(max_size=600))
def test_random_bytes(name: str, data: bytes) -> None:
    _check(name, data)


@SETTINGS
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                words, emails, phones, countries, st.sampled_from(["technical", "diplomatic", "yes", "no", "'=1", '"'])
            ),
            min_size=0,
            max_size=8,
        ),
        max_size=6,
    ),
    header=st.permutations(
        ["state", "kind", "organisation", "emails", "phones", "available_24_7", "secure_channels", "extra", "languages"]
    ),
)
def test_csv_valid_looking(rows: list[list[str]], header: list[str]) -> None:
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    _check("csv", out.getvalue().encode())


@SETTINGS
@given(
    entries=st.lists(
        st.fixed_dictionaries(
            {
                "state": countries,
                "kind": st.sampled_from(["technical", "x"]),
                "organisation": words,
                "emails": st.lists(emails, max_size=2),
            },
            optional={"person": words, "holder_epoch": json_values, "secure_channels": json_values, "x": json_values},
        ),
        max_size=4,
    ),
    wrap=st.booleans(),
)
def test_json_valid_looking(entries: list, wrap: bool) -> None:
    doc = (
        {"type": "pocsync.export/v1", "entries": [{"key": "AUT/technical", "entry": e} for e in entries]}
        if wrap
        else entries
    )
    _check("json", json.dumps(doc).encode())


@SETTINGS
@given(
    teams=st.lists(
        st.fixed_dictionaries(
            {
                "official_name": words,
                "short_name": json_values,
                "country": countries,
                "constituency": st.fixed_dictionaries(
                    {"types": st.lists(st.sampled_from(["national", "x", ""]), max_size=2)}
                )
                | json_values,
                "business_hours": st.fixed_dictionaries(
                    {"hours": st.sampled_from(["24/7", "9-5", ""]), "timezone": words}
                )
                | json_values,
                "emails": st.lists(
                    st.fixed_dictionaries({"address": emails, "usage": words}) | json_values, max_size=2
                ),
                "phones": st.lists(st.fixed_dictionaries({"number": phones}) | json_values, max_size=2),
                "pgp_keys": st.lists(
                    st.fixed_dictionaries({"fingerprint": words, "expires": words}) | json_values, max_size=2
                ),
            }
        ),
        max_size=4,
    )
)
def test_ti_teams_valid_looking(teams: list) -> None:
    _check("ti-teams", json.dumps(teams).encode())


@SETTINGS
@given(
    data=st.lists(
        st.fixed_dictionaries(
            {
                "id": json_values,
                "team": words,
                "team-full": json_values,
                "country": countries,
                "email": emails | json_values,
                "pgp-fingerprint": json_values,
            }
        ),
        max_size=4,
    )
)
def test_first_teams_valid_looking(data: list) -> None:
    _check("first-teams", json.dumps({"data": data}).encode())
    a = adapters.load("first-teams")
    m = a.default_mapping.merged(adapters.parse_mapping({"qualify": {"ids": ["1", "2", "3"]}}))
    try:
        recs = list(a.read(json.dumps({"data": data}).encode(), mapping=m, source="f"))
    except SourceError:
        return
    sources.plan(
        recs,
        m,
        source="f",
        adapter="first-teams",
        own={},
        tracked_keys={},
        sync_deletes=False,
        in_scope=lambda s: True,
        today_iso="2026-01-01",
    )


@SETTINGS
@given(
    orgs=st.lists(
        st.fixed_dictionaries(
            {
                "id": json_values,
                "uuid": json_values,
                "name": words | json_values,
                "nationality": countries | json_values,
                "sector": st.sampled_from(["National CSIRT", "x"]),
                "contacts": words | emails | json_values,
            }
        ),
        max_size=4,
    )
)
def test_misp_orgs_valid_looking(orgs: list) -> None:
    body = json.dumps([{"Organisation": o} for o in orgs]).encode()
    _check("misp-orgs", body)
    a = adapters.load("misp-orgs")
    m = a.default_mapping.merged(
        adapters.parse_mapping({"qualify": {"match": [{"field": "sector", "value": "National CSIRT"}]}})
    )
    try:
        recs = list(a.read(body, mapping=m, source="m"))
    except SourceError:
        return
    sources.plan(
        recs,
        m,
        source="m",
        adapter="misp-orgs",
        own={},
        tracked_keys={},
        sync_deletes=False,
        in_scope=lambda s: True,
        today_iso="2026-01-01",
    )


vcard_props = st.sampled_from(
    [
        "FN",
        "ORG",
        "TITLE",
        "EMAIL",
        "TEL",
        "TZ",
        "LANG;PREF=x",
        "NOTE",
        "KIND",
        "ADR",
        "X-POCSYNC-STATE",
        "X-POCSYNC-KIND",
        "X-POCSYNC-24-7",
        "X-POCSYNC-NETWORKS",
        "X-POCSYNC-SECURE-CHANNEL",
        "X-POCSYNC-EXTRA",
        "N",
        "CATEGORIES",
        "VERSION",
        "BEGIN",
    ]
)


@SETTINGS
@given(
    cards=st.lists(
        st.lists(st.tuples(vcard_props, st.one_of(words, emails, phones, countries)), max_size=8), max_size=3
    )
)
def test_vcard_valid_looking(cards: list) -> None:
    text = "".join(
        "BEGIN:VCARD\r\nVERSION:4.0\r\n" + "".join(f"{p}:{v}\r\n" for p, v in props) + "END:VCARD\r\n"
        for props in cards
    )
    _check("vcard", text.encode())


ldif_attrs = st.sampled_from(
    [
        "o",
        "title",
        "displayName",
        "mail",
        "telephoneNumber",
        "description",
        "c",
        "businessCategory",
        "objectClass",
        "cn",
        "dn",
        "changetype",
        "mail:",
        "o:",
    ]
)


@SETTINGS
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from(["cn=a,dc=example,dc=org", "bad", "", "cn=b+sn=c,o=x"]),
            st.lists(
                st.tuples(
                    ldif_attrs,
                    st.one_of(
                        words,
                        emails,
                        phones,
                        countries,
                        st.sampled_from(
                            [
                                "pocsync:state=AUT",
                                "pocsync:kind=technical",
                                "pocsync:24x7=maybe",
                                "pocsync:extra={",
                                "pocsync:extra=[1]",
                            ]
                        ),
                    ),
                ),
                max_size=8,
            ),
        ),
        max_size=3,
    )
)
def test_ldif_valid_looking(records: list) -> None:
    text = "version: 1\n\n" + "\n".join(
        f"dn: {dn}\n" + "".join(f"{a}: {v}\n" for a, v in attrs) for dn, attrs in records
    )
    _check("ldif", text.encode())


@SETTINGS
@given(
    attrs=st.dictionaries(
        st.sampled_from(
            [
                "o",
                "title",
                "displayName",
                "mail",
                "telephoneNumber",
                "c",
                "cn",
                "businessCategory",
                "description",
                "jpegPhoto",
            ]
        ),
        st.lists(
            st.binary(max_size=30)
            | words
            | st.sampled_from(
                [
                    "pocsync:state=AUT",
                    "pocsync:kind=technical",
                    'pocsync:extra={"a":1}',
                    "pocsync:secure-channel=[",
                    "AT",
                    "x@example.org",
                ]
            ),
            max_size=4,
        ),
        max_size=8,
    )
)
def test_ldap_entries_from_a_server(attrs: dict) -> None:
    """What the ldap adapter builds from a server's raw attributes (bytes) maps or fails documentedly."""
    from pocsync_adapters._ldapattrs import DEFAULT_MAPPING, raw_record

    rec = adapters.Record(ref="cn=x", raw=raw_record("cn=x", attrs), id="cn=x")
    p = sources.plan(
        [rec],
        DEFAULT_MAPPING,
        source="l",
        adapter="ldap",
        own={},
        tracked_keys={},
        sync_deletes=False,
        in_scope=lambda s: True,
        today_iso="2026-01-01",
    )
    assert p.records == 1 and len(p.present) + len(p.invalid) + len(p.skipped) == 1
