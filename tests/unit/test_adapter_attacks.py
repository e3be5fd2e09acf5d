"""Hostile sources and mapping files (attack review of issue 14): only documented errors escape."""

from __future__ import annotations

import pytest

from pocsync import adapters
from pocsync.adapters import Record
from pocsync.errors import ConfigError, SourceError

CSV = b"state,kind,organisation,emails\nAUT,technical,Example CSIRT (fictional),duty@example.org\n"


@pytest.mark.parametrize("encoding", ["rot13", "base64", "hex", "zlib"])
def test_a_mapping_naming_a_non_text_codec_is_a_source_error(encoding: str) -> None:
    m = adapters.load("csv").default_mapping.merged(adapters.parse_mapping({"options": {"encoding": encoding}}))
    with pytest.raises(SourceError, match="not a text encoding"):
        list(adapters.load("csv").read(CSV, mapping=m, source="s.csv"))


@pytest.mark.parametrize("options,word", [
    ({"extract_from": ["contacts"]}, "extract_from must be a text"),
    ({"encoding": 8}, "encoding must be a text"),
    ({"delimiter": [";"]}, "delimiter must be a text"),
    ({"timeout_seconds": "soon"}, "timeout_seconds must be a whole number"),
    ({"timeout_seconds": True}, "timeout_seconds must be a whole number"),
    ({"timeout_seconds": 0}, "between 1 and 3600"),
    ({"starttls": "yes"}, "starttls must be true or false"),
    ({"password_file": 5}, "password_file must be a text"),
])
def test_mapping_options_of_the_wrong_type_are_refused_when_read(options: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        adapters.parse_mapping({"options": options})


def test_options_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match="options"):
        adapters.parse_mapping({"options": ["x"]})


def test_extract_from_a_list_never_escapes_as_type_error() -> None:
    misp = adapters.load("misp-orgs")
    with pytest.raises(ConfigError):
        misp.default_mapping.merged(adapters.parse_mapping({"options": {"extract_from": ["contacts"]},
                                                            "qualify": {"all": True}}))
    # and the adapter's own text option still works
    m = misp.default_mapping.merged(adapters.parse_mapping({"qualify": {"all": True}}))
    rec = Record(ref="r", raw={"name": "X", "nationality": "Austria", "contacts": "duty@example.org"})
    assert adapters.map_record(rec, m)["emails"] == ["duty@example.org"]
