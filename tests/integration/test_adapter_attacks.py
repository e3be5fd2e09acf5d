"""Attack review of issue 14, through the real CLI and a real node store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import LocalFederation, run

FRA = {"state": "FRA", "kind": "technical", "organisation": "Shared CSIRT (fictional)", "emails": ["fr@example.org"]}
ITA = {"state": "ITA", "kind": "technical", "organisation": "Hand-made CSIRT (fictional)", "emails": ["it@example.org"]}
AUT = {"state": "AUT", "kind": "technical", "organisation": "Example CSIRT (fictional)", "emails": ["at@example.org"]}


def _keys(fed: LocalFederation) -> set[str]:
    return {r["key"] for r in json.loads(run("entry", "list", "--data", fed.data("eu"), "--json").output)}


def _import(fed: LocalFederation, src: Path, sid: str, *extra: str) -> dict:
    res = run(
        "entry", "import", "--data", fed.data("eu"), src, "--adapter", "json", "--source-id", sid, "--json", *extra
    )
    return json.loads(res.stdout)


def test_sync_deletes_never_deletes_what_another_source_or_a_hand_put_wrote_when_a_source_lists_it_too(
    tmp_path: Path,
) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    fed.put("eu", [ITA])  # hand-made
    other = tmp_path / "other.json"
    other.write_text(json.dumps([FRA]))
    _import(fed, other, "other")  # another source puts FRA/technical
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([AUT, FRA, ITA]))  # this source happens to list the same entries
    rep = _import(fed, mine, "mine")
    assert rep["committed"]["ops"] == 1 and [p["key"] for p in rep["puts"]] == ["AUT/technical"]
    mine.write_text(json.dumps([AUT]))  # ... and then no longer does
    rep = _import(fed, mine, "mine", "--sync-deletes")
    assert rep["deletes"] == [] and rep["committed"] is None
    assert _keys(fed) == {"AUT/technical", "FRA/technical", "ITA/technical"}
    # what this source itself put is still deleted
    mine.write_text(json.dumps([FRA]))
    rep = _import(fed, mine, "mine", "--sync-deletes")
    assert rep["deletes"] == [{"key": "AUT/technical"}]
    assert _keys(fed) == {"FRA/technical", "ITA/technical"}


def test_a_hostile_ldap_server_referral_never_gets_the_bind_password(tmp_path: Path) -> None:
    """A referral to another host is not followed: ldap3 would re-bind there with our DN and password."""
    import socket
    import threading

    from tests.support.slapd import ROOT_DN, SUFFIX, Slapd

    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(1)
    trap.settimeout(8)
    got: list[bytes] = []

    def listen() -> None:
        try:
            conn, _ = trap.accept()
        except OSError:
            return
        conn.settimeout(3)
        try:
            while chunk := conn.recv(4096):
                got.append(chunk)
        except OSError:
            pass
        conn.close()

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    s = Slapd(tmp_path / "slapd").start()
    try:
        port = trap.getsockname()[1]
        s.ldapadd(
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: pocsync\no: Example\n\n"
            f"dn: ou=moved,{SUFFIX}\nobjectClass: referral\nobjectClass: extensibleObject\nou: moved\n"
            f"ref: ldap://127.0.0.1:{port}/ou=pocs,dc=evil,dc=example\n".encode()
        )
        (tmp_path / "ldap.pw").write_text(s.password + "\n")
        m = tmp_path / "ldap.toml"
        m.write_text(
            f'[options]\nbase = "ou=moved,{SUFFIX}"\nbind_dn = "{ROOT_DN}"\npassword_file = "ldap.pw"\n'
            "timeout_seconds = 3\n"
        )
        fed = LocalFederation(tmp_path / "fed", nodes=("eu",))
        res = run("entry", "import", "--data", fed.data("eu"), s.url, "--adapter", "ldap", "--mapping", m, ok=False)
    finally:
        s.stop()
        trap.close()
        t.join(5)
    assert s.password.encode() not in b"".join(got)
    assert got == []  # not even a connection attempt
    assert res.exit_code != 0 and "referral" in res.output.lower()
    assert "Traceback" not in res.output
