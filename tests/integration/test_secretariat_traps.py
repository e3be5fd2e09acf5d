"""Mistakes a secretariat really makes when importing its members' PoCs (found trying it as a new user).

Each test drives the real CLI against a real node folder and SQLite store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pocsync.directory.adapters import state_code
from pocsync.errors import EntryError
from tests.support.cli import LocalFederation, run

HEADER = "Country;Role;Agency;Mail;Phone\n"
ROWS = (
    "AT;tech;Example CERT Austria (fictional);cert@cert-aut.example.org;+4315123456\n"
    "DE;tech;Example CERT Germany (fictional);cert@cert-deu.example.org;+49301234567\n"
)
MAPPING = """\
[options]
delimiter = ";"
[fields]
state = "Country"
organisation = "Agency"
emails = "Mail"
phones = "Phone"
[kind]
field = "Role"
map = { tech = "technical", dipl = "diplomatic" }
"""


def _seq(fed: LocalFederation) -> str:
    return run("digest", "--data", fed.data("eu")).output


def test_a_misspelt_option_is_named_not_ignored(tmp_path: Path) -> None:
    """`delimeter = ";"` used to be ignored in silence; the error then blamed the header."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    (tmp_path / "m.csv").write_text(HEADER + ROWS)
    (tmp_path / "m.toml").write_text(MAPPING.replace("delimiter", "delimeter"))
    before = _seq(fed)
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "m.csv",
        "--adapter",
        "csv",
        "--mapping",
        tmp_path / "m.toml",
        ok=False,
    )
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "m.toml: [options] delimeter" in out and "(its options: delimiter, encoding)" in out
    assert _seq(fed) == before


def test_mapped_columns_match_a_header_whose_capitalisation_changed(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    (tmp_path / "m.csv").write_text(HEADER.upper().replace("MAIL", " mail ") + ROWS)
    (tmp_path / "m.toml").write_text(MAPPING)
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "m.csv",
        "--adapter",
        "csv",
        "--mapping",
        tmp_path / "m.toml",
        "--dry-run",
        "--json",
    )
    plan = json.loads(res.stdout)
    assert sorted(p["key"] for p in plan["puts"]) == ["AUT/technical", "DEU/technical"]


def test_a_missing_kind_column_is_named_in_the_header_check(tmp_path: Path) -> None:
    """It was reported per record as "None is not mapped to a kind"."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    (tmp_path / "m.csv").write_text(HEADER.replace("Role", "Type") + ROWS)
    (tmp_path / "m.toml").write_text(MAPPING)
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "m.csv",
        "--adapter",
        "csv",
        "--mapping",
        tmp_path / "m.toml",
        ok=False,
    )
    assert res.exit_code == 2 and "the header lacks the mapped column(s) Role" in " ".join(res.output.split())


def test_a_mapping_mistake_keeps_its_bracketed_key_in_the_message(tmp_path: Path) -> None:
    """The CLI printed errors as terminal markup: "[fields] 'organization'" lost "[fields]"."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    (tmp_path / "m.csv").write_text(HEADER + ROWS)
    (tmp_path / "m.toml").write_text(MAPPING.replace("organisation =", "organization ="))
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "m.csv",
        "--adapter",
        "csv",
        "--mapping",
        tmp_path / "m.toml",
        ok=False,
    )
    assert res.exit_code == 2 and "[fields] 'organization'" in " ".join(res.output.split())


def test_entry_put_with_markup_like_values_is_one_clear_error_not_a_traceback(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    before = _seq(fed)
    res = fed.put("eu", [{"state": "[/x]", "kind": "technical", "organisation": "A"}], ok=False)
    assert res.exit_code == 2 and "'[/x]'" in res.output
    assert _seq(fed) == before


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("The Netherlands", "NLD"),
        ("Turkey", "TUR"),
        ("Russia", "RUS"),
        ("UK", "GBR"),
        ("St Lucia", "LCA"),
        ("Ivory Coast", "CIV"),
        ("Republic of Korea", "KOR"),
        ("the  United Kingdom", "GBR"),
        ("Austria", "AUT"),
        ("AT", "AUT"),
        ("aut", "AUT"),
    ],
)
def test_state_names_in_everyday_use(name: str, code: str) -> None:
    assert state_code("r", name) == code


def test_an_unknown_state_name_says_to_give_the_code() -> None:
    with pytest.raises(EntryError, match="give the ISO code"):
        state_code("r", "Belgique")


def test_editing_a_signed_manifest_says_nodes_will_refuse_the_same_version(tmp_path: Path) -> None:
    """add-node on the signed manifest kept v1; "sign v1 again" led to a v1 every node refused."""
    fed = LocalFederation(tmp_path, nodes=("eu", "osce"))
    run("init", "--node", "arf", "--data", tmp_path / "arf")
    (tmp_path / "arf.json").write_text(run("node-info", "--data", tmp_path / "arf").output)
    res = run(
        "manifest",
        "add-node",
        fed.manifest,
        "--node-info",
        tmp_path / "arf.json",
        "--role",
        "regional",
        "--scope",
        "AUS",
    )
    assert "pocsync manifest next" in " ".join(res.output.split())
    run("manifest", "sign", fed.manifest, "--key", tmp_path / "root" / "root.key")
    res = run("manifest", "install", "--data", fed.data("eu"), fed.manifest, ok=False)
    assert res.exit_code == 2 and "not newer" in res.output


def test_two_sources_giving_one_key_are_warned_about(tmp_path: Path) -> None:
    """Each replaced the other's version (dropping its phones) at every run, in silence."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(
        "state,kind,organisation,emails,phones\n"
        "DEU,technical,Example CERT Germany (fictional),cert@cert-deu.example.org,+49301234567\n"
    )
    b.write_text(
        "state,kind,organisation,emails\n"
        "DEU,technical,Example national team of Germany (fictional),team@cert-deu.example.org\n"
    )
    imp = lambda src: run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv")  # noqa: E731
    assert "last put by source" not in imp(a).output
    out = " ".join(imp(b).output.split())
    assert f"DEU/technical was last put by source csv:{a}" in out and "keep each key in one source" in out
    assert f"last put by source csv:{b}" in " ".join(imp(a).output.split())
    assert "last put by source" not in imp(a).output  # unchanged: nothing published, nothing to warn about


def test_a_mail_client_card_whose_fn_is_a_short_form_of_its_org_is_a_team(tmp_path: Path) -> None:
    """FN "Example CERT France" with ORG "Example CERT France (fictional)" was read as a person, so
    the card, mapped to technical, was refused: "a technical PoC names no individual"."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    (tmp_path / "c.vcf").write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Example CERT France\r\nORG:Example CERT France (fictional)\r\n"
        "EMAIL;TYPE=INTERNET:cert@cert-fra.example.org\r\nCATEGORIES:CSIRT\r\n"
        "ADR;TYPE=WORK:;;1 rue Exemple;Paris;;75001;France\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Example\r\nORG:Example MFA of Germany (fictional)\r\n"
        "EMAIL;TYPE=INTERNET:jane@mfa-deu.example.org\r\nCATEGORIES:MFA\r\n"
        "ADR;TYPE=WORK:;;Strasse 1;Berlin;;10115;Germany\r\nEND:VCARD\r\n"
    )
    (tmp_path / "c.toml").write_text(
        '[kind]\nfield = "categories"\nmap = { CSIRT = "technical", MFA = "diplomatic" }\n[fields]\nstate = "country"\n'
    )
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "c.vcf",
        "--adapter",
        "vcard",
        "--mapping",
        tmp_path / "c.toml",
        "--dry-run",
        "--json",
    )
    plan = json.loads(res.stdout)
    assert sorted(p["key"] for p in plan["puts"]) == ["DEU/diplomatic", "FRA/technical"], plan["invalid"]


def test_an_export_slice_that_selects_nothing_says_so(tmp_path: Path) -> None:
    """`--network` with a typo wrote an empty file and exited 0 without a word; `--states XYZ` too."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    fed.put(
        "eu",
        [
            {
                "state": "AUT",
                "kind": "technical",
                "organisation": "Example CERT (fictional)",
                "emails": ["cert@cert-aut.example.org"],
                "networks": ["example-csirts"],
            }
        ],
    )
    res = run("export", "--data", fed.data("eu"), "--format", "csv", "--network", "example-csirt")
    assert "no entry matches --network example-csirt; networks in this view: example-csirts" in " ".join(
        res.output.split()
    )
    res = run("export", "--data", fed.data("eu"), "--format", "csv", "--states", "XYZ", ok=False)
    assert res.exit_code == 2 and "XYZ not ISO 3166-1 alpha-3" in res.output
    assert (
        "no entry matches"
        not in run("export", "--data", fed.data("eu"), "--format", "csv", "--network", "example-csirts").output
    )


def test_rows_padded_with_empty_cells_by_a_spreadsheet_are_read(tmp_path: Path) -> None:
    """A row ending in ';;' (Excel pads rows) was refused: "10 cells but the header has 8"."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    (tmp_path / "m.csv").write_bytes((HEADER + ROWS.replace("\n", ";;\n")).replace("\n", "\r\n").encode())
    (tmp_path / "m.toml").write_text(MAPPING)
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "m.csv",
        "--adapter",
        "csv",
        "--mapping",
        tmp_path / "m.toml",
        "--dry-run",
        "--json",
    )
    assert sorted(p["key"] for p in json.loads(res.stdout)["puts"]) == ["AUT/technical", "DEU/technical"]
    (tmp_path / "m.csv").write_text(HEADER + ROWS.replace("\n", ";x\n", 1))
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "m.csv",
        "--adapter",
        "csv",
        "--mapping",
        tmp_path / "m.toml",
        "--dry-run",
        "--json",
        ok=False,
    )
    assert json.loads(res.stdout)["invalid"][0]["message"].endswith("6 cells but the header has 5")


def test_an_ldif_export_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """A UTF-8 BOM (Windows tools) made the first block "invalid LDIF: 'ascii' codec can't decode"."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    text = (
        "version: 1\r\n\r\ndn: uid=aut-cert,ou=contacts,dc=example,dc=org\r\nobjectClass: inetOrgPerson\r\n"
        "cn: CERT\r\nsn: CERT\r\no: Example CERT Austria (fictional)\r\nou: technical\r\nc: AT\r\n"
        "mail: cert@cert-aut.example.org\r\n"
    )
    (tmp_path / "d.ldif").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "d.toml").write_text('[fields]\nstate = "c"\nkind = "ou"\n')
    res = run(
        "entry",
        "import",
        "--data",
        fed.data("eu"),
        tmp_path / "d.ldif",
        "--adapter",
        "ldif",
        "--mapping",
        tmp_path / "d.toml",
        "--dry-run",
        "--json",
    )
    plan = json.loads(res.stdout)
    assert [p["key"] for p in plan["puts"]] == ["AUT/technical"] and plan["invalid"] == []
