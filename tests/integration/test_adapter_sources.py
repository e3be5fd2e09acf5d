"""Every adapter on its documented fixture, through the real CLI and a real node store.

For each: records map as documented; an unchanged re-import publishes nothing; one changed field
publishes exactly one op; a removed record is deleted only with --sync-deletes; records that do
not qualify are skipped with a reason.  Then malformed sources, and the export → import round trip
of every adapter that writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import LocalFederation, run

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "adapters"


def _drop_line(prefix: bytes) -> Callable[[bytes], bytes]:
    return lambda b: b"".join(ln for ln in b.splitlines(keepends=True) if not ln.startswith(prefix))


def _drop_json(path: Callable[[object], list], i: int) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        doc = json.loads(b)
        del path(doc)[i]
        return json.dumps(doc).encode()

    return f


def _drop_first_card(b: bytes) -> bytes:
    return b[b.index(b"END:VCARD") + len(b"END:VCARD\n") :]


def _drop_ldif_block(n: int) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        blocks = b.split(b"\n\n")
        del blocks[n]
        return b"\n\n".join(blocks)

    return f


@dataclass
class Case:
    adapter: str
    fixture: str
    mapping: str | None
    keys: dict[str, dict]  # key -> fields the entry must have
    skipped: int
    change: tuple[bytes, bytes, str]
    remove: tuple[Callable[[bytes], bytes], str]


CASES = [
    Case(
        "csv",
        "pocs.csv",
        None,
        {
            "AUT/technical": {"available_24_7": True, "languages": ["de", "en"], "networks": ["eu-csirts"]},
            "AUT/diplomatic": {"person": "A. Example", "notes": "Reachable on weekdays; office hours, CET"},
            "DEU/technical": {"emails": ["cert@cert-deu.example.org", "soc@cert-deu.example.org"]},
        },
        0,
        (b"duty@csirt-aut", b"desk@csirt-aut", "AUT/technical"),
        (_drop_line(b"deu,"), "DEU/technical"),
    ),
    Case(
        "csv",
        "regional.csv",
        "regional-csv.toml",
        {
            "FRA/technical": {
                "organisation": "CERT exemple de France (fictif)",
                "available_24_7": True,
                "languages": ["fr", "en"],
                "timezone": "Europe/Paris",
                "networks": ["example-regional-csirts"],
            },
            "FRA/diplomatic": {"organisation": "Minist\u00e8re exemple (fictif)", "available_24_7": False},
            "ITA/technical": {"phones": ["+390612345678"]},
        },
        0,
        (b"Permanence", b"Astreinte", "FRA/technical"),
        (_drop_line(b"IT;"), "ITA/technical"),
    ),
    Case(
        "json",
        "export.json",
        None,
        {
            "DEU/diplomatic": {
                "x-desk": "room 4",
                "languages": ["de", "en", "fr"],
                "secure_channels": [
                    {
                        "type": "openpgp",
                        "expires": "2030-01-31",
                        "fingerprint": "0123456789ABCDEF0123456789ABCDEF01234567",
                    }
                ],
            },
            "ITA/technical": {"available_24_7": True},
        },
        0,
        (b"room 4", b"room 5", "DEU/diplomatic"),
        (_drop_json(lambda d: d["entries"], 1), "ITA/technical"),
    ),
    Case(
        "vcard",
        "contacts.vcf",
        "contacts-vcf.toml",
        {
            "AUT/technical": {"phones": ["+4315123457"], "emails": ["team@cert-aut.example.org"]},
            "DEU/diplomatic": {"person": "C. Example", "position": "Head of cyber policy", "languages": ["de", "en"]},
        },
        1,
        (b"Head of cyber policy", b"Head of cyber affairs", "DEU/diplomatic"),
        (_drop_first_card, "AUT/technical"),
    ),
    Case(
        "ldif",
        "directory.ldif",
        None,
        {
            "FRA/technical": {"available_24_7": True, "languages": ["fr", "en"], "timezone": "Europe/Paris"},
            "DEU/diplomatic": {"person": "E. Example", "notes": "Reachable on weekdays; office hours, CET"},
        },
        0,
        (b"Duty officer", b"Night officer", "FRA/technical"),
        (_drop_ldif_block(2), "DEU/diplomatic"),
    ),
    Case(
        "ldif",
        "other-directory.ldif",
        "other-ldif.toml",
        {"ITA/diplomatic": {"networks": ["example-ldap-region"]}, "AUT/technical": {"phones": ["+4315123458"]}},
        0,
        (b"cyber@mfa-ita", b"policy@mfa-ita", "ITA/diplomatic"),
        (_drop_ldif_block(2), "AUT/technical"),
    ),
    Case(
        "ti-teams",
        "teams.json",
        None,
        {
            "DEU/technical": {
                "available_24_7": True,
                "timezone": "Europe/Berlin",
                "phones": ["+493012345671"],
                "secure_channels": [
                    {
                        "type": "openpgp",
                        "expires": "2031-06-30",
                        "fingerprint": "89ABCDEF0123456789ABCDEF0123456789ABCDEF",
                    }
                ],
            },
            "FRA/technical": {"emails": ["csirt@ex-csirt-fr.example.org"]},
        },
        2,
        (b"emergency@ex-cert-de", b"urgent@ex-cert-de", "DEU/technical"),
        (_drop_json(lambda d: d, 1), "FRA/technical"),
    ),
    Case(
        "first-teams",
        "first-teams.json",
        "first-teams.toml",
        {
            "AUT/technical": {
                "networks": ["example-first-nationals"],
                "timezone": "Europe/Vienna",
                "secure_channels": [{"type": "openpgp", "fingerprint": "FEDCBA9876543210FEDCBA9876543210FEDCBA98"}],
            },
            "ITA/technical": {"emails": ["cert@ex-cert-it.example.org"]},
        },
        2,
        (b"team@ex-cert-at", b"duty@ex-cert-at", "AUT/technical"),
        (_drop_json(lambda d: d["data"], 0), "AUT/technical"),
    ),
    Case(
        "misp-orgs",
        "misp-orgs.json",
        "misp-orgs.toml",
        {
            "ITA/technical": {
                "emails": ["csirt@ex-csirt-it.example.org"],
                "phones": ["+390612345679"],
                "available_24_7": True,
            },
            "DEU/technical": {"phones": ["+493012345672"]},
        },
        2,
        (b"csirt@ex-csirt-de", b"duty@ex-csirt-de", "DEU/technical"),
        (_drop_json(lambda d: d, 0), "ITA/technical"),
    ),
]


def _import(fed: LocalFederation, src: Path, case: Case, *extra: str, ok: bool = True):
    args = [
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        src,
        "--adapter",
        case.adapter,
        "--json",
        "--source-id",
        f"test:{case.fixture}",
    ]
    if case.mapping:
        args += ["--mapping", FIX / case.mapping]
    res = run(*args, *extra, ok=ok)
    return res, (json.loads(res.stdout) if res.stdout.strip().startswith("{") else None)


def _seq(fed: LocalFederation) -> int:
    return len([ln for ln in fed.export("eu").splitlines() if ln.strip()])


@pytest.mark.parametrize("case", CASES, ids=[f"{c.adapter}:{c.fixture}" for c in CASES])
def test_adapter_on_its_fixture(tmp_path: Path, case: Case) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    src = tmp_path / case.fixture
    original = (FIX / case.fixture).read_bytes()
    src.write_bytes(original)

    # records map as documented; non-qualifying ones are skipped with a reason
    _, rep = _import(fed, src, case)
    assert rep["invalid"] == [] and rep["committed"]["ops"] == len(case.keys)
    assert len(rep["skipped"]) == case.skipped and all(s["reason"] for s in rep["skipped"])
    rows = {r["key"]: r["entry"] for r in json.loads(run("entry", "list", "--data", fed.data("eu"), "--json").output)}
    assert set(rows) == set(case.keys)
    for key, want in case.keys.items():
        for field, value in want.items():
            assert rows[key].get(field) == value, (key, field, rows[key].get(field))
        assert not {"key", "origin", "hlc"} & set(rows[key])
    n = _seq(fed)

    # an unchanged re-import publishes nothing
    _, rep = _import(fed, src, case)
    assert rep["committed"] is None and rep["puts"] == [] and rep["unchanged"] == len(case.keys)
    assert _seq(fed) == n

    # one changed field in one record: exactly one op
    old, new, key = case.change
    assert original.count(old) == 1
    src.write_bytes(original.replace(old, new))
    _, rep = _import(fed, src, case, "--dry-run")
    assert [p["key"] for p in rep["puts"]] == [key] and rep["committed"] is None and _seq(fed) == n
    _, rep = _import(fed, src, case)
    assert rep["committed"]["ops"] == 1 and [p["key"] for p in rep["puts"]] == [key] and rep["deletes"] == []
    assert _seq(fed) == n + 1

    # a removed record: no delete without --sync-deletes, exactly one with it
    drop, gone = case.remove
    src.write_bytes(drop(original.replace(old, new)))
    _, rep = _import(fed, src, case)
    assert rep["deletes"] == [] and rep["committed"] is None and _seq(fed) == n + 1
    _, rep = _import(fed, src, case, "--sync-deletes")
    assert rep["deletes"] == [{"key": gone}] and rep["committed"]["ops"] == 1 and rep["puts"] == []
    rows = {r["key"] for r in json.loads(run("entry", "list", "--data", fed.data("eu"), "--json").output)}
    assert rows == set(case.keys) - {gone}


def test_sync_deletes_never_touches_a_hand_made_entry_or_another_source(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    case = CASES[0]
    src = tmp_path / "pocs.csv"
    src.write_bytes((FIX / "pocs.csv").read_bytes())
    _import(fed, src, case)
    # a hand-made entry, and a hand edit of an imported key
    fed.put(
        "eu",
        [
            {
                "state": "ITA",
                "kind": "technical",
                "organisation": "Hand-made CSIRT (fictional)",
                "emails": ["hand@example.org"],
            },
            {
                "state": "DEU",
                "kind": "technical",
                "organisation": "Edited by hand (fictional)",
                "emails": ["cert@cert-deu.example.org"],
            },
        ],
    )
    # another source puts FRA/technical
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            [
                {
                    "state": "FRA",
                    "kind": "technical",
                    "organisation": "Other source (fictional)",
                    "emails": ["fr@example.org"],
                }
            ]
        )
    )
    run("entry", "import", "--data", fed.data("eu"), other, "--adapter", "json", "--source-id", "other")
    empty_but_one = tmp_path / "one.csv"
    empty_but_one.write_text(
        "state,kind,organisation,emails\nAUT,technical,Example CSIRT of Austria (fictional),"
        "duty@csirt-aut.example.org\n"
    )
    res, rep = _import(fed, empty_but_one, case, "--sync-deletes")
    # AUT/diplomatic was this source's and is gone from it; DEU/technical was edited by hand since: kept
    assert rep["deletes"] == [{"key": "AUT/diplomatic"}]
    keys = {r["key"] for r in json.loads(run("entry", "list", "--data", fed.data("eu"), "--json").output)}
    assert keys == {"AUT/technical", "DEU/technical", "ITA/technical", "FRA/technical"}


BAD = [
    (
        "csv",
        "broken.csv",
        b'state,kind,organisation,emails\nAUT,technical,"Unclosed quote,duty@example.org\n',
        None,
        "record",
        "broken CSV",
    ),
    (
        "csv",
        "person.csv",
        b"state,kind,organisation,person,emails\nAUT,technical,Example CSIRT (fictional),"
        b"A. Person,duty@csirt-aut.example.org\n",
        None,
        "person",
        "names no individual",
    ),
    (
        "ldif",
        "bad.ldif",
        b"version: 1\n\ndn: not a dn\nmail: x@example.org\n\ndn: cn=x,dc=example,dc=org\nmail:: ***notbase64\n",
        None,
        "record",
        "invalid LDIF",
    ),
    ("ti-teams", "shape.json", b'{"data": []}', "source", None, "expected a list"),
    ("json", "shape.json", b'"just a string"', "source", None, "expected a pocsync.export/v1"),
    ("first-teams", "shape.json", b"[1, 2]", "source", None, '{"data": [...]}'),
    ("misp-orgs", "shape.json", b'[{"Organisation": []}]', None, "record", "must be an object"),
]


@pytest.mark.parametrize("adapter,name,body,level,field,text", BAD, ids=[f"{b[0]}:{b[1]}" for b in BAD])
def test_malformed_sources_name_the_record_and_field_and_commit_nothing(
    tmp_path: Path, adapter: str, name: str, body: bytes, level: str | None, field: str | None, text: str
) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    src = tmp_path / name
    src.write_bytes(body)
    before = _seq(fed)
    res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", adapter, ok=False)
    flat = re.sub(r"\s+", " ", res.output)
    assert res.exit_code == 2 and "Traceback" not in res.output
    if level == "source":
        assert text in flat, flat
    else:
        assert "nothing was committed" in flat and name in flat
        res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", adapter, "--json", ok=False)
        assert res.exit_code == 2
        rep = json.loads(res.stdout)
        assert rep["invalid"] and rep["invalid"][0]["field"] == field and text in rep["invalid"][0]["message"]
        assert rep["invalid"][0]["ref"].startswith(str(src)) and rep["committed"] is None
    assert _seq(fed) == before


def test_invalid_records_are_skipped_valid_ones_commit_and_strict_refuses(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    src = tmp_path / "mixed.csv"
    src.write_text(
        "state,kind,organisation,emails,phones\n"
        "AUT,technical,Example CSIRT (fictional),duty@csirt-aut.example.org,+4315123456\n"
        "DEU,technical,Example CERT (fictional),cert@cert-deu.example.org,+49 30\n"
        "UKR,technical,Out of scope (fictional),cert@cert-ukr.example.org,\n"
        "XXX,technical,No such State,x@example.org,\n"
    )
    res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv", "--strict", ok=False)
    assert res.exit_code == 2 and "--strict" in res.output and _seq(fed) == 0
    res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv", "--json", ok=False)
    assert res.exit_code == 1
    rep = json.loads(res.stdout)
    bad = {(p["ref"].rsplit(":", 1)[1], p["field"], p["reason"]) for p in rep["invalid"]}
    assert bad == {("3", "phones[0]", "bad_phone"), ("4", "state", "out_of_scope"), ("5", "state", "unknown_state")}
    assert rep["committed"]["ops"] == 1 and _seq(fed) == 1
    # the table form names record and field too
    res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv", "--dry-run", ok=False)
    assert res.exit_code == 1 and "phones[0]" in res.output and "out_of_scope" in res.output


def test_unrecognised_csv_header_says_so(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    src = tmp_path / "people.csv"
    src.write_text("Name,Email,Country\nExample CERT,cert@example.org,AT\n")
    res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv", ok=False)
    out = re.sub(r"\s+", " ", res.output)
    assert res.exit_code == 2 and "CSV header not recognised" in out and "lacks state, kind, organisation" in out
    assert "--mapping" in out and "None is not" not in out
    help_text = run("entry", "import", "--help").output
    for col in ("state", "kind", "organisation", "available_24_7", "secure_channels", "networks"):
        assert col in help_text


FULL = [
    {
        "state": "DEU",
        "kind": "diplomatic",
        "organisation": "Fictional MFA, cyber (example)",
        "position": "Coordinator",
        "person": "A. Example",
        "emails": ["a@example.org", "b@example.org"],
        "phones": ["+493012345678"],
        "available_24_7": False,
        "timezone": "Europe/Berlin",
        "languages": ["de", "en"],
        "networks": ["eu-cyber-ambassadors", "osce-cbm"],
        "notes": "=1+2; office hours, CET\nsecond line",
        "secure_channels": [{"type": "openpgp", "fingerprint": "AB" * 20, "expires": "2030-01-31"}],
        "x-desk": {"room": 4, "floor": "2"},
    },
    {
        "state": "AUT",
        "kind": "technical",
        "organisation": "@Example CSIRT \u00d6sterreich (fictional)",
        "emails": ["duty@csirt-aut.example.org"],
    },
    {
        "state": "ITA",
        "kind": "technical",
        "organisation": "Example CSIRT of Italy (fictional)",
        "phones": ["+390612345678"],
        "available_24_7": True,
        "networks": ["eu-csirts"],
    },
]


def _entries(fed: LocalFederation, node: str) -> dict[str, dict]:
    out = {}
    for r in json.loads(run("entry", "list", "--data", fed.data(node), "--json").output):
        e = dict(r["entry"])
        e.pop("holder_epoch")
        out[r["key"]] = e
    return out


@pytest.mark.parametrize("fmt", ["csv", "json", "vcard", "ldif"])
def test_export_import_round_trip(tmp_path: Path, fmt: str) -> None:
    a = LocalFederation(tmp_path / "a", nodes=("eu",))
    a.put("eu", FULL)
    dump = tmp_path / f"view.{fmt}"
    run("export", "--data", a.data("eu"), "--format", fmt, "--out", dump)
    b = LocalFederation(tmp_path / "b", nodes=("eu",))
    run("entry", "import", "--data", b.data("eu"), dump, "--adapter", fmt)
    got, want = _entries(b, "eu"), _entries(a, "eu")
    assert got == want
    assert "available_24_7" not in got["AUT/technical"] and got["DEU/diplomatic"]["x-desk"] == {"room": 4, "floor": "2"}
    n = _seq(b)
    res = run("entry", "import", "--data", b.data("eu"), dump, "--adapter", fmt)
    assert "nothing changed" in res.output and _seq(b) == n
    # and importing the export back into the node it came from publishes nothing either
    run("entry", "import", "--data", a.data("eu"), dump, "--adapter", fmt)
    assert len([ln for ln in a.export("eu").splitlines() if ln.strip()]) == 1


def test_export_a_regional_slice(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    fed.put("eu", FULL)
    doc = json.loads(run("export", "--data", fed.data("eu"), "--states", "ITA,AUT").stdout)
    assert sorted(e["key"] for e in doc["entries"]) == ["AUT/technical", "ITA/technical"]
    doc = json.loads(run("export", "--data", fed.data("eu"), "--network", "eu-csirts").stdout)
    assert [e["key"] for e in doc["entries"]] == ["ITA/technical"]
    ldif = run(
        "export",
        "--data",
        fed.data("eu"),
        "--format",
        "ldif",
        "--network",
        "osce-cbm",
        "--base-dn",
        "ou=osce,dc=example,dc=org",
    ).stdout
    assert ldif.count("dn: ") == 1 and "cn=DEU-diplomatic,ou=osce,dc=example,dc=org" in ldif
    res = run("export", "--data", fed.data("eu"), "--states", "AT", ok=False)
    assert res.exit_code == 2 and "alpha-3" in res.output


def test_adapters_command_lists_readers_and_writers() -> None:
    rows = {r["name"]: r for r in json.loads(run("adapters", "--json").output)}
    assert set(rows) >= {"csv", "json", "vcard", "ldif", "ldap", "ti-teams", "first-teams", "misp-orgs"}
    assert {n for n, r in rows.items() if r["writes"]} == {"csv", "json", "vcard", "ldif"}
    assert rows["ldap"]["live"] is True


def test_a_withdrawn_key_is_not_relisted_by_an_import(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    case = CASES[0]
    src = tmp_path / "pocs.csv"
    src.write_bytes((FIX / "pocs.csv").read_bytes())
    _import(fed, src, case)
    run("entry", "withdraw", "--data", fed.data("eu"), "AUT/diplomatic")
    n = _seq(fed)
    _, rep = _import(fed, src, case, "--sync-deletes")
    assert rep["committed"] is None and _seq(fed) == n and rep["deletes"] == []
    assert any("withdrawn" in s["reason"] for s in rep["skipped"])


def test_source_content_is_never_read_as_terminal_markup(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    src = tmp_path / "markup.csv"
    src.write_text(
        "state,kind,organisation,emails,phones\n"
        "AUT,technical,Example CSIRT (fictional),duty@csirt-aut.example.org,+4315123456\n"
        "DEU,technical,[bold]Example[/bold],cert@cert-deu.example.org,[/x]\n"
    )
    res = run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv", "--dry-run", ok=False)
    assert res.exit_code == 1 and "[/x]" in res.output
