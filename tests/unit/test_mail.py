"""pocsync.mail: messages no field can inject into; [smtp] settings checked; a real relay (aiosmtpd, STARTTLS)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

import pytest

from pocsync import mail
from pocsync.errors import ConfigError, MailError
from pocsync.folder import config as configmod
from tests.support.smtp import SmtpServer


def settings(tmp_path: Path, **kw: object) -> mail.SmtpSettings:
    raw = {"host": "127.0.0.1", "sender": "directory@example.org", **kw}
    s = mail.parse_settings(raw, tmp_path)
    assert s is not None
    return s


def test_a_message_is_plain_text_with_checked_headers(tmp_path: Path) -> None:
    msg = mail.build_message(
        settings(tmp_path),
        to=["a.poc@example.org"],
        subject="Check of your listing",
        body="Grüße — please confirm.\n",
        language="de",
    )
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["To"] == "a.poc@example.org"
    assert parsed["From"] == "directory@example.org"
    assert parsed["Content-Language"] == "de"
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().replace("\r\n", "\n") == "Grüße — please confirm.\n"


@pytest.mark.parametrize(
    "addr",
    [
        "a@example.org\r\nBcc: x@example.org",
        "a@example.org, b@example.org",
        "Eve <eve@example.org>",
        "no-at-sign",
        "a@example.org\n",
        "",
        "a b@example.org",
    ],
)
def test_an_address_that_could_inject_is_refused(tmp_path: Path, addr: str) -> None:
    with pytest.raises(MailError) as e:
        mail.build_message(settings(tmp_path), to=[addr], subject="s", body="b")
    assert e.value.reason == "bad_address"


@pytest.mark.parametrize("subject", ["one\r\nBcc: x@example.org", "two\nlines", "x" * 201])
def test_a_subject_that_could_inject_is_refused(tmp_path: Path, subject: str) -> None:
    with pytest.raises(MailError) as e:
        mail.build_message(settings(tmp_path), to=["a@example.org"], subject=subject, body="b")
    assert e.value.reason == "bad_header"


def test_extra_headers_cannot_add_recipients(tmp_path: Path) -> None:
    for name in ("Bcc", "Cc", "To", "Reply-To"):
        with pytest.raises(MailError):
            mail.build_message(
                settings(tmp_path), to=["a@example.org"], subject="s", body="b", headers={name: "x@example.org"}
            )
    with pytest.raises(MailError):
        mail.build_message(
            settings(tmp_path),
            to=["a@example.org"],
            subject="s",
            body="b",
            headers={"X-Ref": "a\r\nBcc: x@example.org"},
        )


def test_an_extra_header_replaces_a_default_instead_of_repeating_it(tmp_path: Path) -> None:
    msg = mail.build_message(
        settings(tmp_path),
        to=["a@example.org"],
        subject="s",
        body="b",
        headers={"Auto-Submitted": "auto-generated", "X-Ref": "r1"},
    )
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed.get_all("Auto-Submitted") == ["auto-generated"]
    assert parsed.get_all("X-Ref") == ["r1"]


def test_recipients_are_capped(tmp_path: Path) -> None:
    s = settings(tmp_path, max_recipients=2)
    with pytest.raises(MailError) as e:
        mail.build_message(s, to=["a@example.org", "b@example.org", "c@example.org"], subject="s", body="b")
    assert e.value.reason == "too_many_recipients"


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"host": "h", "sender": "d@example.org", "security": "none"}, "plaintext is not offered"),
        ({"host": "h"}, "sender is required"),
        ({"host": "h", "sender": "not an address"}, "sender"),
        ({"host": "h", "sender": "d@example.org", "user": "u"}, "go together"),
        ({"host": "h", "sender": "d@example.org", "port": 0}, "positive integer"),
        ({"host": "h", "sender": "d@example.org", "colour": "blue"}, "unknown key"),
    ],
)
def test_bad_smtp_settings_are_refused_by_name(tmp_path: Path, raw: dict, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        mail.parse_settings(raw, tmp_path)
    assert words in e.value.message


def test_sync_toml_reads_smtp_and_contact_email(tmp_path: Path) -> None:
    toml = tmp_path / "sync.toml"
    toml.write_text(
        '[node]\nid = "eu"\ncontact_email = "secretariat@example.org"\n'
        '[smtp]\nhost = "smtp.example.org"\nsecurity = "tls"\nsender = "dir@example.org"\n'
    )
    cfg = configmod.load(toml)
    assert cfg.contact_email == "secretariat@example.org"
    assert cfg.smtp is not None and cfg.smtp.port == 465 and cfg.smtp.security == "tls"
    toml.write_text('[node]\nid = "eu"\ncontact_email = "nobody"\n')
    with pytest.raises(ConfigError, match="contact_email"):
        configmod.load(toml)


def test_mail_reaches_a_real_relay_over_starttls_and_refusals_keep_their_code(tmp_path: Path) -> None:
    with SmtpServer(tmp_path, reject={"gone@example.org"}) as srv:
        s = settings(
            tmp_path, port=srv.port, user=srv.user, password_file=str(srv.password_file), ca_file=str(srv.ca_file)
        )
        msg = mail.build_message(s, to=["poc@example.org", "gone@example.org"], subject="Check", body="Hello\n")
        result = asyncio.run(mail.send(s, msg))
        assert result.accepted == ["poc@example.org"]
        assert result.refused["gone@example.org"][0] == 550
        got = srv.wait_for(1)[0]
        assert got["Subject"] == "Check" and got.get_content().replace("\r\n", "\n") == "Hello\n"
        assert srv.envelopes[0] == ("directory@example.org", ["poc@example.org"])
        # every recipient refused: still a result, not an exception
        only_gone = mail.build_message(s, to=["gone@example.org"], subject="Check", body="x")
        r2 = asyncio.run(mail.send(s, only_gone))
        assert r2.accepted == [] and r2.refused["gone@example.org"][0] == 550


def test_a_wrong_password_an_unknown_ca_and_no_relay_are_named(tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as srv:
        bad_pw = tmp_path / "bad-pw"
        bad_pw.write_text("wrong\n")
        bad_pw.chmod(0o600)
        s = settings(tmp_path, port=srv.port, user=srv.user, password_file=str(bad_pw), ca_file=str(srv.ca_file))
        msg = mail.build_message(s, to=["poc@example.org"], subject="s", body="b")
        with pytest.raises(MailError) as e:
            asyncio.run(mail.send(s, msg))
        assert e.value.reason == "smtp_auth"
        s2 = settings(tmp_path, port=srv.port, user=srv.user, password_file=str(srv.password_file))  # no test CA
        with pytest.raises(MailError) as e:
            asyncio.run(mail.send(s2, msg))
        assert e.value.reason == "smtp_tls"
        srv.password_file.chmod(0o644)
        s3 = settings(
            tmp_path, port=srv.port, user=srv.user, password_file=str(srv.password_file), ca_file=str(srv.ca_file)
        )
        with pytest.raises(MailError, match="chmod 600"):
            asyncio.run(mail.send(s3, msg))
        assert srv.messages == []
    s4 = settings(tmp_path, port=srv.port, timeout_seconds=3)
    with pytest.raises(MailError) as e:
        asyncio.run(mail.send(s4, mail.build_message(s4, to=["poc@example.org"], subject="s", body="b")))
    assert e.value.reason == "smtp_unavailable"
