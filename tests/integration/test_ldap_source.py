"""The ldap adapter against a real OpenLDAP (slapd from the system's packages, own config, free port)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import LocalFederation, run
from tests.support.slapd import ROOT_DN, SUFFIX, Slapd, slapd_exe

assert slapd_exe() is not None, "slapd missing: scripts/test installs it (apt-get install slapd ldap-utils)"

BASE = (
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: pocsync\no: Example\n\n"
    f"dn: ou=pocs,{SUFFIX}\nobjectClass: organizationalUnit\nou: pocs\n".encode()
)
ENTRIES = [
    {
        "state": "AUT",
        "kind": "technical",
        "organisation": "Example CSIRT of Austria (fictional)",
        "emails": ["duty@csirt-aut.example.org"],
        "phones": ["+4315123456"],
        "available_24_7": True,
        "timezone": "Europe/Vienna",
        "languages": ["de", "en"],
        "networks": ["eu-csirts"],
        "secure_channels": [{"type": "openpgp", "fingerprint": "AB" * 20}],
    },
    {
        "state": "DEU",
        "kind": "diplomatic",
        "organisation": "Example Foreign Office (fictional)",
        "person": "A. Example",
        "position": "Cyber coordinator",
        "emails": ["cyber@fo-deu.example.org"],
        "notes": "weekdays; CET",
    },
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
    rep = json.loads(
        run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap", "--mapping", m, "--json").stdout
    )
    assert rep["committed"] is None and rep["unchanged"] == 2
    # one modification in LDAP: exactly one op
    slapd.ldapadd(
        f"dn: cn=AUT-technical,ou=pocs,{SUFFIX}\nchangetype: modify\nreplace: mail\n"
        "mail: desk@csirt-aut.example.org\n".encode(),
        modify=True,
    )
    rep = json.loads(
        run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap", "--mapping", m, "--json").stdout
    )
    assert (
        rep["committed"]["ops"] == 1
        and rep["puts"][0]["key"] == "AUT/technical"
        and rep["puts"][0]["fields"] == ["emails"]
    )
    assert entries(b, "eu")["AUT/technical"]["emails"] == ["desk@csirt-aut.example.org"]


def test_wrong_password_and_unreachable_server_are_one_clear_line(tmp_path: Path, slapd: Slapd) -> None:
    b = LocalFederation(tmp_path / "b", nodes=("eu",))
    m = mapping_file(tmp_path, slapd)
    (tmp_path / "ldap.pw").write_text("wrong\n")
    res = run("entry", "import", "--data", b.data("eu"), slapd.url, "--adapter", "ldap", "--mapping", m, ok=False)
    assert res.exit_code == 2 and "LDAPInvalidCredentialsResult" in res.output and "Traceback" not in res.output
    res = run(
        "entry", "import", "--data", b.data("eu"), "ldap://127.0.0.1:1", "--adapter", "ldap", "--mapping", m, ok=False
    )
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.slow
def test_daemon_source_loop_keeps_ldap_in_step_and_health_shows_it(tmp_path: Path, slapd: Slapd) -> None:
    from tests.integration.test_operations import get
    from tests.support.nodes import Federation, wait_for

    a = LocalFederation(tmp_path / "a", nodes=("eu",))
    a.put("eu", ENTRIES)
    slapd.ldapadd(
        run("export", "--data", a.data("eu"), "--format", "ldif", "--base-dn", f"ou=pocs,{SUFFIX}").stdout_bytes
    )
    fed = Federation(tmp_path / "fed", ("un", "eu"), pull_interval=2)
    m = mapping_file(fed["eu"].data, slapd)
    toml = fed["eu"].data / "sync.toml"
    toml.write_text(
        toml.read_text() + f'\n[[sources]]\nname = "regional-ldap"\nadapter = "ldap"\n'
        f'source = "{slapd.url}"\nmapping = "{m.name}"\ninterval_seconds = 5\nsync_deletes = true\n'
    )
    try:
        fed.start()
        want = entries(a, "eu")

        def view(node: str) -> dict:
            with fed[node].store() as s:
                return {r["key"]: {k: v for k, v in r["entry"].items() if k != "holder_epoch"} for r in s.entries()}

        wait_for(lambda: view("un") == want, 60, "the LDAP directory to reach the un node through eu's source loop")
        slapd.ldapadd(
            f"dn: cn=AUT-technical,ou=pocs,{SUFFIX}\nchangetype: modify\nreplace: mail\n"
            "mail: desk@csirt-aut.example.org\n".encode(),
            modify=True,
        )
        wait_for(
            lambda: view("un").get("AUT/technical", {}).get("emails") == ["desk@csirt-aut.example.org"],
            60,
            "the LDAP modification to reach the view",
        )
        slapd.ldapadd(f"dn: cn=DEU-diplomatic,ou=pocs,{SUFFIX}\nchangetype: delete\n".encode(), modify=True)
        wait_for(lambda: "DEU/diplomatic" not in view("un"), 60, "the LDAP deletion to reach the view (sync_deletes)")
        with fed["eu"].store() as s:
            seqs = [r[0] for r in s.conn.execute("SELECT seq FROM log WHERE origin='eu'")]
        assert len(seqs) == 3  # initial import, one modification, one deletion: unchanged runs publish nothing

        op = run("token", "issue", "--data", fed["eu"].data, "--operator", "watch").output.strip()
        h = json.loads(get(fed["eu"].url + "/v1/health", op)[1])
        src = h["sources"]["regional-ldap"]
        assert src["adapter"] == "ldap" and src["result"] in ("unchanged", "published") and src["error"] is None
        assert src["records"] == 1 and src["runs"] >= 3 and src["watch"] == "interval"  # no syncprov: polled
        body = json.dumps(h)
        for secret in ("desk@csirt-aut", "Example CSIRT of Austria", "+4315123456", "A. Example"):
            assert secret not in body
        # a failing source shows as an error with its reason, and the node stays up
        slapd.stop()
        wait_for(
            lambda: (
                json.loads(get(fed["eu"].url + "/v1/health", op)[1])["sources"]["regional-ldap"]["result"] == "error"
            ),
            30,
            "the source error to show in health",
        )
        h = json.loads(get(fed["eu"].url + "/v1/health", op)[1])
        assert h["sources"]["regional-ldap"]["error"]["reason"] == "bad_source"
    finally:
        fed.stop()


@pytest.mark.slow
def test_starttls_and_ldaps_verify_the_server_certificate(tmp_path: Path) -> None:
    from tests.integration.test_listener_tls import self_signed

    crt, key = self_signed(tmp_path)
    s = Slapd(tmp_path / "slapd-tls", tls=(crt, key)).start()
    try:
        s.ldapadd(BASE)
        a = LocalFederation(tmp_path / "a", nodes=("eu",))
        a.put("eu", ENTRIES)
        s.ldapadd(
            run("export", "--data", a.data("eu"), "--format", "ldif", "--base-dn", f"ou=pocs,{SUFFIX}").stdout_bytes
        )
        m = mapping_file(tmp_path, s)
        base_opts = m.read_text()
        for url, extra in ((s.url, f'starttls = true\nca_file = "{crt}"\n'), (s.ldaps_url, f'ca_file = "{crt}"\n')):
            m.write_text(base_opts + extra)
            b = LocalFederation(tmp_path / f"b{len(extra)}", nodes=("eu",))
            rep = json.loads(
                run(
                    "entry", "import", "--data", b.data("eu"), url, "--adapter", "ldap", "--mapping", m, "--json"
                ).stdout
            )
            assert rep["committed"]["ops"] == 2, url
            assert entries(b, "eu") == entries(a, "eu")
        # without the CA the certificate is not trusted: refused, nothing committed
        m.write_text(base_opts + "starttls = true\n")
        c = LocalFederation(tmp_path / "c", nodes=("eu",))
        res = run("entry", "import", "--data", c.data("eu"), s.url, "--adapter", "ldap", "--mapping", m, ok=False)
        assert res.exit_code == 2 and "Traceback" not in res.output and "certificate verify failed" in res.output, (
            res.output
        )
        assert json.loads(run("entry", "list", "--data", c.data("eu"), "--json").output) == []
    finally:
        s.stop()


@pytest.mark.slow
def test_daemon_follows_ldap_changes_at_once_where_the_server_offers_syncrepl(tmp_path: Path) -> None:
    from tests.integration.test_operations import get
    from tests.support.nodes import Federation, wait_for

    s = Slapd(tmp_path / "slapd-sync", syncprov=True).start()
    fed = Federation(tmp_path / "fed", ("eu",), pull_interval=30)
    try:
        s.ldapadd(BASE)
        a = LocalFederation(tmp_path / "a", nodes=("eu",))
        a.put("eu", ENTRIES)
        s.ldapadd(
            run("export", "--data", a.data("eu"), "--format", "ldif", "--base-dn", f"ou=pocs,{SUFFIX}").stdout_bytes
        )
        m = mapping_file(fed["eu"].data, s)
        toml = fed["eu"].data / "sync.toml"
        # an interval far longer than the test: only change notification can bring the edit in time
        toml.write_text(
            toml.read_text() + f'\n[[sources]]\nname = "ldap"\nadapter = "ldap"\nsource = "{s.url}"\n'
            f'mapping = "{m.name}"\ninterval_seconds = 3600\n'
        )
        fed.start()

        def emails() -> list | None:
            with fed["eu"].store() as st:
                row = st.entry("AUT/technical")
            return row["entry"]["emails"] if row else None

        wait_for(lambda: emails() == ["duty@csirt-aut.example.org"], 60, "the initial import")
        op = run("token", "issue", "--data", fed["eu"].data, "--operator", "watch").output.strip()
        wait_for(
            lambda: (
                json.loads(get(fed["eu"].url + "/v1/health", op)[1])["sources"]["ldap"]["watch"]
                == "on change (RFC 4533)"
            ),
            30,
            "the syncrepl watch to start",
        )
        s.ldapadd(
            f"dn: cn=AUT-technical,ou=pocs,{SUFFIX}\nchangetype: modify\nreplace: mail\n"
            "mail: desk@csirt-aut.example.org\n".encode(),
            modify=True,
        )
        wait_for(lambda: emails() == ["desk@csirt-aut.example.org"], 30, "the change to arrive without polling")
        h = json.loads(get(fed["eu"].url + "/v1/health", op)[1])["sources"]["ldap"]
        assert h["runs"] == 2 and h["last_committed_seq"] == 2
    finally:
        fed.stop()
        s.stop()
