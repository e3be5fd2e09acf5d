"""Mapping files: every key documented in docs/adapters/README.md, and clear errors for mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocsync.directory import adapters
from pocsync.directory.adapters import Record
from pocsync.errors import ConfigError, EntryError


def mapped(raw: dict, toml: str, tmp_path: Path, default: adapters.Mapping | None = None, rid: str | None = None):
    f = tmp_path / "m.toml"
    f.write_text(toml)
    m = (default or adapters.Mapping()).merged(adapters.load_mapping(f))
    return adapters.map_record(Record(ref="src:1", raw=raw, id=rid), m)


def test_fields_paths_kind_map_network_defaults_booleans(tmp_path: Path) -> None:
    raw = {
        "Country": "Austria",
        "Org": {"name": " Example CERT "},
        "mails": [{"a": "x@example.org"}, {"a": "y@example.org"}],
        "type": "CSIRT",
        "h24": "oui",
        "fp": "ab cd",
    }
    e = mapped(
        raw,
        """network = "n1"
[fields]
state = "Country"
organisation = "Org.name"
emails = "mails[].a"
available_24_7 = "h24"
pgp_fingerprints = "fp"
[kind]
field = "type"
map = { CSIRT = "technical" }
[defaults]
timezone = "Europe/Vienna"
networks = ["n0"]
[booleans]
oui = true
""",
        tmp_path,
    )
    assert e == {
        "state": "AUT",
        "organisation": "Example CERT",
        "emails": ["x@example.org", "y@example.org"],
        "available_24_7": True,
        "secure_channels": [{"type": "openpgp", "fingerprint": "ABCD"}],
        "kind": "technical",
        "timezone": "Europe/Vienna",
        "networks": ["n0", "n1"],
    }


def test_qualify_by_id_and_match_and_skip_reasons(tmp_path: Path) -> None:
    toml = (
        '[qualify]\nids = ["7"]\n[[qualify.match]]\nfield = "tags"\nvalue = "national"\n[fields]\norganisation = "n"\n'
    )
    assert isinstance(mapped({"n": "x"}, toml, tmp_path, rid="7"), dict)
    assert isinstance(mapped({"n": "x", "tags": ["a", "National"]}, toml, tmp_path, rid="8"), dict)
    reason = mapped({"n": "x", "tags": ["a"]}, toml, tmp_path, rid="8")
    assert isinstance(reason, str) and "not national-level" in reason and "tags = 'national'" in reason


def test_unmapped_kind_value_names_record_and_field(tmp_path: Path) -> None:
    with pytest.raises(EntryError) as e:
        mapped({"type": "ISAC"}, '[kind]\nfield = "type"\nmap = { CSIRT = "technical" }\n', tmp_path)
    assert e.value.detail["record"] == "src:1" and e.value.detail["field"] == "type" and "ISAC" in e.value.message


def test_bad_state_names_record_and_field(tmp_path: Path) -> None:
    with pytest.raises(EntryError) as e:
        mapped({"c": "Atlantis"}, '[fields]\nstate = "c"\n', tmp_path)
    assert e.value.detail["field"] == "state" and "Atlantis" in e.value.message


@pytest.mark.parametrize(
    "toml,text",
    [
        ("nope = 1\n", "unknown key(s) nope"),
        ('[fields]\nphone = "x"\n', "'phone' is not an entry field"),
        ('kind = "consular"\n', "technical or diplomatic"),
        ('[kind]\nfield = "t"\nmap = { a = "x" }\n', "technical, diplomatic or skip"),
        ('[qualify]\nids = "7"\n', "ids must be a list"),
        ('[defaults]\ncolour = "x"\n', "[defaults] takes entry fields only"),
        ('extract = ["notes"]\n', "extract takes"),
        ("[fields\n", "m.toml"),
    ],
)
def test_mapping_mistakes_are_one_clear_config_error(tmp_path: Path, toml: str, text: str) -> None:
    f = tmp_path / "m.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as e:
        adapters.load_mapping(f)
    assert text in e.value.message


def test_missing_mapping_file_and_unknown_adapter(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        adapters.load_mapping(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="no adapter 'nope'"):
        adapters.load("nope")


def test_sources_in_sync_toml(tmp_path: Path) -> None:
    import re

    from pocsync.folder import config

    example = (Path(__file__).parents[2] / "sync.toml.example").read_text()
    block = example[example.index("# [[sources]]") :].split("\n\n")[0]  # the sources block only
    uncommented = example + "\n" + re.sub(r"^# ", "", block, flags=re.M)
    f = tmp_path / "sync.toml"
    f.write_text(uncommented)
    cfg = config.load(f)
    assert [(s.name, s.adapter, s.interval_seconds, s.sync_deletes) for s in cfg.sources] == [
        ("regional-ldap", "ldap", 300, False)
    ]
    f.write_text(uncommented + '\n[[sources]]\nname = "regional-ldap"\nadapter = "csv"\nsource = "x.csv"\n')
    with pytest.raises(ConfigError, match="unique"):
        config.load(f)
    f.write_text(uncommented.replace("interval_seconds = 300", "interval_seconds = 1"))
    with pytest.raises(ConfigError, match="at least 5"):
        config.load(f)
    f.write_text(uncommented.replace("sync_deletes = false", "sync_delete = false"))
    with pytest.raises(ConfigError, match="unknown key"):
        config.load(f)
