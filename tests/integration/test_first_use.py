"""What a first user trips on when following README.md and docs/OPERATIONS.md (found by trying them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run


def test_set_features_on_a_draft_names_the_previous_and_the_new_version(tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("a passphrase for the test root key\n")
    run("keys", "root-init", "--out", tmp_path / "root", "--passphrase-file", pw)
    m1 = tmp_path / "manifest.json"
    run("manifest", "create", "--out", m1, "--root-pub", tmp_path / "root" / "root.pub", "--threshold", "1")
    run("manifest", "sign", m1, "--key", tmp_path / "root" / "root.key", "--passphrase-file", pw)
    m2 = tmp_path / "manifest-v2.json"
    run("manifest", "next", m1, "--out", m2)  # an unsigned draft of v2, as OPERATIONS.md says
    out = " ".join(run("manifest", "set-features", m2, "--features", "freshness").output.split())
    assert "manifest v2 enables freshness" in out
    assert "roots of v1 and v2" in out


def test_a_held_change_notice_speaks_the_language_of_the_entry_that_lists_the_address() -> None:
    """Found by trying held changes with a French entry: check mails were in French, the notice in English."""
    from pocsync.node import held_loop

    prev = {"state": "FRA", "kind": "technical", "emails": ["cert@csirt-fra.example.org"], "languages": ["fr"]}
    other = {
        "state": "FRA",
        "kind": "diplomatic",
        "emails": ["diplo@mfa-fra.example.org", "CERT@csirt-fra.example.org"],
        "languages": ["es"],
    }
    assert held_loop.notice_recipients(prev, other) == [
        ("cert@csirt-fra.example.org", "previous", "fr"),
        ("diplo@mfa-fra.example.org", "other", "es"),
    ]
    row = {"key": "FRA/technical", "fields": ["emails"], "origin": "eu", "hlc": "1796288489345-0000"}
    subject, body = held_loop.message_text(
        row,
        link="https://eu.example.org/held/object?token=x",
        earliest_ms=1796288555363,
        hold_s=60,
        role="previous",
        language="fr",
    )
    assert subject == "Modification en attente de la fiche FRA/technical de l'annuaire des points de contact"
    assert "opposez-vous ici" in body and "https://eu.example.org/held/object?token=x" in body
    subject, body = held_loop.message_text(
        row, link="L", earliest_ms=1796288555363, hold_s=60, role="other", language="es"
    )
    assert subject.startswith("Cambio pendiente") and "(FRA/diplomatic)" in body
    subject, _ = held_loop.message_text(row, link="L", earliest_ms=1796288555363, hold_s=60, role="previous")
    assert subject == "Pending change of the PoC directory entry FRA/technical"


def test_check_start_matching_no_channel_starts_no_campaign(tmp_path: Path) -> None:
    """Found by trying `check start --states ZZZ`: it committed an empty campaign and exited 0."""
    from pocsync.folder.nodedir import NodeDir
    from tests.support.cli import ENTRIES, LocalFederation

    fed = LocalFederation(tmp_path)
    eu = fed.data("eu")
    pw = tmp_path / "smtp-pw"
    pw.write_text("not used\n")
    pw.chmod(0o600)
    with (eu / "sync.toml").open("a") as f:
        f.write(
            f'\n[smtp]\nhost = "127.0.0.1"\nport = 9\nsecurity = "starttls"\nsender = "directory@example.org"\n'
            f'user = "pocsync"\npassword_file = "{pw}"\n'
        )
    fed.put("eu", ENTRIES["eu"])
    for args in (["--states", "ZZZ"], ["--network", "no-such-network"], ["--states", "ITA"]):
        res = run("check", "start", "--data", eu, "--deadline", "1h", *args, ok=False)
        assert res.exit_code == 2, res.output
        assert "no email channel" in res.output and "no campaign was started" in res.output
    with NodeDir.open(eu).store() as s:
        assert s.conn.execute("SELECT count(*) FROM check_campaigns").fetchone()[0] == 0
    out = run("check", "start", "--data", eu, "--deadline", "1h", "--states", "AUT").output
    assert "2 email channel(s) to check" in out


def test_a_policy_file_that_is_not_one_json_object_gets_a_sentence_that_reads(tmp_path: Path) -> None:
    """Found by trying `manifest set-features --policy` with a wrong file: 'give the policy file that you (e.g. …)
    printed'."""
    pw = tmp_path / "pw.txt"
    pw.write_text("a passphrase for the test root key\n")
    run("keys", "root-init", "--out", tmp_path / "root", "--passphrase-file", pw)
    m1 = tmp_path / "manifest.json"
    run("manifest", "create", "--out", m1, "--root-pub", tmp_path / "root" / "root.pub")
    for name, text in (("bad.txt", "not json\n"), ("list.json", "[]\n")):
        (tmp_path / name).write_text(text)
        res = run("manifest", "set-features", m1, "--policy", tmp_path / name, ok=False)
        out = " ".join(res.output.split())
        assert res.exit_code == 2 and "give one JSON object of policies by feature, e.g." in out, out
        assert "that you" not in out and "as you" not in out and "of one node" not in out


@pytest.mark.asyncio
async def test_an_acknowledgement_link_without_a_usable_token_says_it_is_not_valid() -> None:
    """Found by opening /check/ack with the token cut off: a page with an Acknowledge button that could only fail."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from pocsync.api import checks

    app = web.Application()
    app.router.add_get("/check/ack", checks.ack_page)
    async with TestClient(TestServer(app)) as client:
        for url in ("/check/ack", "/check/ack?token=", "/check/ack?token=3D0at7Lqki"):
            r = await client.get(url)
            text = await r.text()
            assert r.status == 400 and "This link is not valid" in text and "<form" not in text, url
