"""The ldap adapter against a real OpenLDAP (slapd from the system's packages, own config, free port)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import LocalFederation, run
from tests.support.slapd import ROOT_DN, SUFFIX, Slapd, slapd_exe

pytestmark = pytest.mark.skipif(slapd_exe() is None, reason="slapd is installed by scripts/test (apt: slapd)")

BASE = f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: pocsync\no: Example\n\n" \
       f"dn: ou=pocs,{SUFFIX}\nobjectClass: organizationalUnit\nou: pocs\n".encode()
ENTRIES = [
    {"state": "AUT", "kind": "technical", "organisation": "Example CSIRT of Austria (fictional)",
     "emails": ["duty@csirt-aut.example.org"], "phones": ["+4315123456"], "available_24_7": True,
     "timezone": "Europe/Vienna", "languages": ["de", "en"], "networks": ["eu-csirts"],
     "secure_channels": [{"type": "openpgp", "fingerprint": "AB" * 20}]},
    {"state": "DEU", "kind": "diplomatic", "organisation": "Example Foreign Office (fictional)", "person": "A. Example",
     "position": "Cyber coordinator", "emails": ["cyber@fo-deu.example.org"], "notes": "weekdays; CET"},
]


@pytest.fixture()
def slapd(tmp_path: Path):
    s = Slapd(tmp_path / "slapd").start()
    s.ldapadd(BASE)
    yield s
    s.stop()


def mapping_file(tmp_path: Path, slapd: Slapd) -> Path:
    (tmp_path / "ldap.pw").write_text(slapd.password + "\n")
    (tmp_path / "ldap.pw").chmod(0o600)
    m = tmp_path / "ldap.toml"
    m.write_text(f'[options]\nbase = "ou=pocs,{SUFFIX}"\nbind_dn = "{ROOT_DN}"\npassword_file = "ldap.pw"\n')
    return m


def entries(fed: LocalFederation, node: str) -> dict[str, dict]:
    rows = json.loads(run("entry", "list", "--data", fed.data(node), "--json").output)
    return {r["key"]: {k: v for k, v in r["entry"].items() if k != "holder_epoch"} for r in rows}


def test_export_loads_into_openldap_and_imports_back(tmp_path: Path, slapd: Slapd) -> None:
    a = LocalFederation(tmp_path / "a", nodes=("eu",))
    a.put("eu", ENTRIES)
    ldif = run("export", "--data", a.data("eu"), "--format", "ldif", "--base-dn", f"ou=pocs,{SUFFIX}").stdout_bytes
    slapd.ldapadd(ldif)  # write-back: the export loads into a stock OpenLDAP (core, cosine, inetorgperson)

    b = LocalFederation(tmp_path / "b", nodes=("eu",))
    m = mapping_file(tmp_path, slapd)
    res = run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap", "--mapping", m, "--json")
    rep = json.loads(res.stdout)
    assert rep["committed"]["ops"] == 2 and rep["invalid"] == []
    assert entries(b, "eu") == entries(a, "eu")
    # unchanged: nothing published
    rep = json.loads(run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap",
                         "--mapping", m, "--json").stdout)
    assert rep["committed"] is None and rep["unchanged"] == 2
    # one modification in LDAP: exactly one op
    slapd.ldapadd(f"dn: cn=AUT-technical,ou=pocs,{SUFFIX}\nchangetype: modify\nreplace: mail\n"
                  "mail: desk@csirt-aut.example.org\n".encode(), modify=True)
    rep = json.loads(run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap",
                         "--mapping", m, "--json").stdout)
    assert rep["committed"]["ops"] == 1 and rep["puts"][0]["key"] == "AUT/technical" and rep["puts"][0]["fields"] == ["emails"]
    assert entries(b, "eu")["AUT/technical"]["emails"] == ["desk@csirt-aut.example.org"]


def test_wrong_password_and_unreachable_server_are_one_clear_line(tmp_path: Path, slapd: Slapd) -> None:
    b = LocalFederation(tmp_path / "b", nodes=("eu",))
    m = mapping_file(tmp_path, slapd)
    (tmp_path / "ldap.pw").write_text("wrong\n")
    res = run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap", "--mapping", m, ok=False)
    assert res.exit_code == 2 and "LDAPInvalidCredentialsResult" in res.output and "Traceback" not in res.output
    res = run("entry", "import", "--data", b.data("eu"), "ldap://127.0.0.1:1", "--adapter", "ldap", "--mapping", m,
              ok=False)
    assert res.exit_code == 2 and "Traceback" not in res.output
