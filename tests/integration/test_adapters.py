"""Regional formats: the CSV adapter, found through the pocsync.adapters entry point."""

from __future__ import annotations

import json
from pathlib import Path

from pocsync.directory import adapters
from tests.support.cli import LocalFederation, run

CSV = """state,kind,organisation,position,person,emails,phones,available_24_7,timezone,languages,networks,x-desk
aut,technical,Example CSIRT of Austria (fictional),Duty officer,,duty@csirt-aut.example.org,+4315123456,yes,Europe/Vienna,de;en,eu-csirts,desk 4
AUT,diplomatic,Example MFA of Austria (fictional),Cyber coordinator,A. Example,cyber-diplo@mfa-aut.example.org,,no,Europe/Vienna,de,,
"""


def test_csv_adapter_is_discovered_and_reads_rows() -> None:
    assert "csv" in adapters.available()
    a = adapters.load("csv")
    rows = [
        adapters.map_record(r, a.default_mapping)
        for r in a.read(CSV.encode(), mapping=a.default_mapping, source="aut.csv")
    ]
    assert rows[0]["state"] == "AUT" and rows[0]["languages"] == ["de", "en"] and rows[0]["available_24_7"] is True
    assert rows[0]["x-desk"] == "desk 4" and "person" not in rows[0]
    assert rows[1]["person"] == "A. Example" and "phones" not in rows[1] and rows[1]["available_24_7"] is False


def test_entry_import_through_the_adapter(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    src = tmp_path / "aut.csv"
    src.write_text(CSV)
    run("entry", "import", "--data", fed.data("eu"), src, "--adapter", "csv")
    rows = json.loads(run("entry", "list", "--data", fed.data("eu"), "--json").output)
    assert {r["key"] for r in rows} == {"AUT/technical", "AUT/diplomatic"}
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("+4315123456", "+43 1"))
    res = run("entry", "import", "--data", fed.data("eu"), bad, "--adapter", "csv", ok=False)
    assert res.exit_code == 1 and "phones[0]" in res.output  # the valid row still goes in
    res = run("entry", "import", "--data", fed.data("eu"), bad, "--adapter", "nope", ok=False)
    assert res.exit_code == 2 and "no adapter 'nope'" in res.output
