"""Reader details that matter for safety and for clear errors."""

from __future__ import annotations

import pytest

from pocsync.directory import adapters
from pocsync.errors import SourceError


def read(name: str, data: bytes, mapping: adapters.Mapping | None = None) -> list[adapters.Record]:
    a = adapters.load(name)
    return list(a.read(data, mapping=a.default_mapping.merged(mapping), source="src"))


def test_ldif_never_fetches_url_values(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the directory")
    recs = read("ldif", f"dn: cn=AUT-technical,dc=x\no: X\ndescription:< file://{secret}\n".encode())
    assert "not for the directory" not in repr(recs)


def test_ldif_and_vcard_report_a_broken_record_and_read_the_rest() -> None:
    recs = read("ldif", b"version: 1\n\ndn: cn=a,dc=x\no: A\n\ndn: broken\no: B\n\ndn: cn=c,dc=x\no: C\n")
    assert [r.error is None for r in recs] == [True, False, True] and recs[1].ref == "src:record 2"
    cards = b"BEGIN:VCARD\nVERSION:4.0\nFN:A\nEND:VCARD\nBEGIN:VCARD\nVERSION:4.0\nFN;=:\nBEGIN:VCARD\nVERSION:3.0\nFN:C\nEND:VCARD\n"
    recs = read("vcard", cards)
    assert len(recs) == 3 and recs[0].error is None and recs[2].error is None and recs[1].ref == "src:card 2"


def test_csv_encoding_and_delimiter_come_from_the_mapping() -> None:
    body = "state;kind;organisation;emails\nFRA;technical;Minist\u00e8re;a@example.org\n".encode("cp1252")
    with pytest.raises(SourceError, match="not utf-8-sig text .* encoding"):
        read("csv", body)
    m = adapters.parse_mapping(
        {
            "options": {"delimiter": ";", "encoding": "cp1252"},
            "fields": {"state": "state", "kind": "kind", "organisation": "organisation", "emails": "emails"},
        }
    )
    rec = read("csv", body, m)[0]
    assert rec.raw["organisation"] == "Minist\u00e8re"
    with pytest.raises(SourceError, match="unknown encoding"):
        read("csv", body, adapters.parse_mapping({"options": {"encoding": "klingon"}}))


def test_json_export_refuses_floats_and_duplicate_keys() -> None:
    with pytest.raises(SourceError, match="fraction or exponent"):
        read("json", b'[{"state": "AUT", "x": 1.5}]')
    with pytest.raises(SourceError, match="duplicate"):
        read("json", b'[{"state": "AUT", "state": "DEU"}]')


@pytest.mark.parametrize(
    "body",
    [
        b'{"state": "ITA", "kind": "technical", "organisation": "X"}\n',
        b'  [\n  {"state": "AUT", "kind": "technical", "organisation": "X"}\n]\n',
    ],
)
def test_csv_given_json_says_so_and_names_the_command_for_json(body: bytes) -> None:
    with pytest.raises(SourceError, match=r"src holds JSON, not CSV: .*entry put.*--adapter json"):
        read("csv", body)
