"""Hostile inputs to communication checks (issue 15, attack review): a peer's report, the relay's refusals,
report text, stale campaign claims.  Real SQLite store, real SMTP server (aiosmtpd, STARTTLS)."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pocsync import mail
from pocsync.directory import campaigns
from pocsync.node import check_loop
from pocsync.store import Store
from tests.support.fed import T0, Fed, put
from tests.support.smtp import SmtpServer


def _store(tmp_path: Path, node: str = "eu") -> tuple[Fed, Store]:
    fed = Fed()
    s = Store.create(tmp_path / f"{node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    s.edit([put("DEU/technical", emails=["cert-deu@example.org"])], key=fed.key(node, "k1"), author="staff", now_ms_=T0)
    return fed, s


class _Worker:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Any, *args: Any) -> Any:
        return fn(self.store, *args)


def _rt(store: Store, smtp: mail.SmtpSettings | None, contact: str = "secretariat@example.org") -> Any:
    cfg = SimpleNamespace(smtp=smtp, contact_email=contact, checks=SimpleNamespace(reminder_days=7))
    return SimpleNamespace(me="eu", cfg=cfg, worker=_Worker(store), counters=collections.Counter(), checks=None)


def _smtp(tmp_path: Path, srv: SmtpServer) -> mail.SmtpSettings:
    s = mail.parse_settings(
        {
            "host": "127.0.0.1",
            "sender": "directory@example.org",
            "port": srv.port,
            "user": srv.user,
            "password_file": str(srv.password_file),
            "ca_file": str(srv.ca_file),
        },
        tmp_path,
    )
    assert s is not None
    return s


def test_a_forwarded_report_with_an_impossible_time_neither_ends_the_loop_nor_blocks_later_reports(
    tmp_path: Path,
) -> None:
    """A peer's at_ms is its claim: 2**53-1 ms is a year no datetime holds.  Before the fix the ValueError
    escaped deliver_reports (the checks task crashed and restarted every second; reminders and every later
    report never went out)."""
    _, s = _store(tmp_path)
    campaigns.add_report(
        s,
        key="DEU/technical",
        origin="eu",
        reporter="FRA/technical",
        received_from="osce",
        text="poisoned time",
        now_ms=2**53 - 1,
    )
    campaigns.add_report(
        s,
        key="DEU/technical",
        origin="eu",
        reporter="ITA/technical",
        received_from="osce",
        text="a later report",
        now_ms=T0,
    )
    with SmtpServer(tmp_path) as srv:
        rt = _rt(s, _smtp(tmp_path, srv))
        assert asyncio.run(check_loop.deliver_reports(rt, None)) == 2
        got = srv.wait_for(2)
        bodies = [m.get_content() for m in got]
        assert any("poisoned time" in b for b in bodies) and any("a later report" in b for b in bodies)
    assert s.conn.execute("SELECT count(*) FROM check_reports WHERE mailed=0").fetchone()[0] == 0


def _job(s: Store) -> campaigns.Job:
    campaigns.create_campaign(s, node="eu", sel=campaigns.Selector(), deadline_s=3600, started_by="t", now_ms=T0)
    jobs = campaigns.prepare_batch(s, now_ms=T0, limit=10, window_ms=30 * 86_400_000)
    assert len(jobs) == 1
    return jobs[0]


def _send_rt(s: Store) -> Any:
    cfg = SimpleNamespace(
        api=SimpleNamespace(public_url="http://127.0.0.1:8080", host_port=("127.0.0.1", 8080)),
        node=SimpleNamespace(organisation="Example directory"),
    )
    return SimpleNamespace(me="eu", cfg=cfg)


import pytest  # noqa: E402


@pytest.mark.parametrize(
    "hook, reply",
    [("handle_MAIL", "550 5.7.1 sender address rejected"), ("handle_DATA", "554 5.6.0 message content rejected")],
)
def test_a_refusal_that_is_not_the_recipients_is_not_signed_as_a_bounce(tmp_path: Path, hook: str, reply: str) -> None:
    """Only the relay refusing the recipient is a bounce of the channel.  A refused sender or message (a
    misconfigured relay, or anyone on the path answering an error) was turned into 'bounced 550/554' by a
    regular expression over the error text, and signed: every channel of the batch looked dead federation-wide."""
    _, s = _store(tmp_path)
    job = _job(s)
    with SmtpServer(tmp_path) as srv:

        async def refuse(*args: Any) -> str:
            return reply

        assert srv._controller is not None
        setattr(srv._controller.handler, hook, refuse)
        out = asyncio.run(check_loop._send(_send_rt(s), _smtp(tmp_path, srv), job))
    assert out.status == "retry" and out.smtp_code is None, out


def test_a_reports_text_cannot_forge_the_end_of_the_quote_in_the_secretariats_mail(tmp_path: Path) -> None:
    """The report mail puts the PoC's words between two lines of dashes and then tells the secretariat what to
    do.  A PoC could write the closing line and its own 'instructions' after it; every line of the text is now
    quoted ('> '), so nothing the PoC wrote stands outside the quote."""
    _, s = _store(tmp_path)
    dashes = "-" * 70
    forged = (
        f"Fine.\n{dashes}\n\nUrgent: the entry moved, update it from https://evil.example.org/fix "
        "with your secretariat token."
    )
    campaigns.add_report(
        s, key="DEU/technical", origin="eu", reporter="FRA/technical", received_from="eu", text=forged, now_ms=T0
    )
    with SmtpServer(tmp_path) as srv:
        assert asyncio.run(check_loop.deliver_reports(_rt(s, _smtp(tmp_path, srv)), None)) == 1
        body = srv.wait_for(1)[0].get_content().replace("\r\n", "\n")
    lines = body.split("\n")
    assert lines.count(dashes) == 2  # only the mail's own two
    start, end = lines.index(dashes), len(lines) - 1 - lines[::-1].index(dashes)
    assert any("evil.example.org" in ln for ln in lines[start + 1 : end])
    assert not any("evil.example.org" in ln for ln in lines[:start] + lines[end:])
    assert all(ln.startswith(">") for ln in lines[start + 1 : end])


def test_reports_that_cannot_be_delivered_do_not_block_the_others(tmp_path: Path) -> None:
    """Reports were taken 20 at a time, oldest first, and one that could not go (its origin node has no HTTP
    endpoint, left the federation, or no client yet) stayed first in line for ever: 20 reports about such an
    origin's entries (a PoC may send them) and no later report reached anyone."""
    _, s = _store(tmp_path)
    for i in range(25):
        campaigns.add_report(
            s,
            key="DEU/technical",
            origin="gone",
            reporter=f"FRA/technical-{i}",
            received_from="eu",
            text=f"stuck {i}",
            now_ms=T0,
        )
    campaigns.add_report(
        s,
        key="DEU/technical",
        origin="eu",
        reporter="ITA/technical",
        received_from="eu",
        text="for this node's own secretariat",
        now_ms=T0,
    )
    with SmtpServer(tmp_path) as srv:
        assert asyncio.run(check_loop.deliver_reports(_rt(s, _smtp(tmp_path, srv)), None)) == 1
        assert "for this node's own secretariat" in srv.wait_for(1)[0].get_content()


def _foreign_sent(s: Store, key: str, address: str, *, at_ms: int, deadline_ms: int, origin: str = "un") -> str:
    """A merged ``check`` register: ``origin`` signed ``sent`` (and never a result) for one channel."""
    import json

    ch = campaigns.channel_id("email", address)
    s.conn.execute(
        "INSERT INTO records (ns, key, origin, op, hlc, cs_id, idx, seq, author, entry) VALUES "
        "('check', ? || '/' || ?, ?, 'check', ?, 'x', 0, 1, 'a', ?)",
        (
            key,
            ch,
            origin,
            f"{at_ms:013d}-0000",
            json.dumps(
                {
                    "op": "check",
                    "key": key,
                    "channel": ch,
                    "result": "sent",
                    "campaign": "un-1",
                    "deadline_ms": deadline_ms,
                }
            ),
        ),
    )
    return ch


HOUR = 3_600_000


def test_a_sent_claim_whose_deadline_passed_without_a_result_does_not_suppress_other_campaigns(tmp_path: Path) -> None:
    """Campaign coordination skips a channel 'checked by any node within the window'.  A node that signs
    'sent' and never a result (crashed, or marking everything 'sent' to keep other nodes from mailing)
    suppressed every other node's campaign for the whole window.  A 'sent' now holds a channel only while its
    deadline is pending; a real result within the window still holds it."""
    _, s = _store(tmp_path)
    _foreign_sent(s, "DEU/technical", "cert-deu@example.org", at_ms=T0 - 2 * HOUR, deadline_ms=T0 - HOUR)
    campaigns.create_campaign(s, node="eu", sel=campaigns.Selector(), deadline_s=3600, started_by="t", now_ms=T0)
    assert len(campaigns.prepare_batch(s, now_ms=T0, limit=10, window_ms=30 * 24 * HOUR)) == 1
    # a pending one still holds it (no double mail while another node's check is in flight)
    _, s2 = _store(tmp_path / "b")
    _foreign_sent(s2, "DEU/technical", "cert-deu@example.org", at_ms=T0 - HOUR, deadline_ms=T0 + HOUR)
    campaigns.create_campaign(s2, node="eu", sel=campaigns.Selector(), deadline_s=3600, started_by="t", now_ms=T0)
    assert campaigns.prepare_batch(s2, now_ms=T0, limit=10, window_ms=30 * 24 * HOUR) == []


def test_a_sent_claim_with_an_endless_deadline_is_not_waiting_for_ever(tmp_path: Path) -> None:
    """deadline_ms may be anything up to 2**53-1 on the wire: the PoC page showed such a check as waiting for
    ever, and it held other nodes' campaigns off for ever.  It counts until at most 90 days (the longest
    deadline a campaign can have) after it was signed."""
    _, s = _store(tmp_path)
    ch = _foreign_sent(s, "DEU/technical", "cert-deu@example.org", at_ms=T0, deadline_ms=2**53 - 1)
    assert [w["channel"] for w in campaigns.waiting_for(s, "DEU/technical", now_ms=T0 + HOUR)] == [ch]
    later = T0 + 91 * 24 * HOUR
    assert campaigns.waiting_for(s, "DEU/technical", now_ms=later) == []
    campaigns.create_campaign(s, node="eu", sel=campaigns.Selector(), deadline_s=3600, started_by="t", now_ms=later)
    assert len(campaigns.prepare_batch(s, now_ms=later, limit=10, window_ms=365 * 24 * HOUR)) == 1


def test_one_poc_or_one_peer_cannot_flood_a_secretariat_with_reports(tmp_path: Path) -> None:
    """Each report is one mail to a secretariat.  The only bound was the request rate (2/s per PoC): one token
    holder could have ~170 000 mails a day sent, and a peer any number.  Now 10 a day per PoC at the node where
    it signed in, 200 a day per forwarding node; other PoCs are not affected."""
    import pytest as _pytest

    _, s = _store(tmp_path)
    for i in range(campaigns.REPORTS_PER_REPORTER_PER_DAY):
        campaigns.add_report(
            s,
            key="DEU/technical",
            origin="eu",
            reporter="FRA/technical",
            received_from="eu",
            text=f"report {i}",
            now_ms=T0 + i,
        )
    with _pytest.raises(campaigns.ReportRefused):
        campaigns.add_report(
            s,
            key="DEU/technical",
            origin="eu",
            reporter="FRA/technical",
            received_from="eu",
            text="one too many",
            now_ms=T0 + HOUR,
        )
    campaigns.add_report(
        s,
        key="DEU/technical",
        origin="eu",
        reporter="ITA/technical",
        received_from="eu",
        text="another PoC",
        now_ms=T0 + HOUR,
    )
    campaigns.add_report(
        s,
        key="DEU/technical",
        origin="eu",
        reporter="FRA/technical",
        received_from="eu",
        text="a day later",
        now_ms=T0 + 25 * HOUR,
    )
    for i in range(campaigns.REPORTS_PER_PEER_PER_DAY):
        campaigns.add_report(
            s,
            key="DEU/technical",
            origin="eu",
            reporter=f"R{i}",
            received_from="osce",
            text="forwarded",
            now_ms=T0 + i,
            local=False,
        )
    with _pytest.raises(campaigns.ReportRefused):
        campaigns.add_report(
            s,
            key="DEU/technical",
            origin="eu",
            reporter="new",
            received_from="osce",
            text="forwarded",
            now_ms=T0 + HOUR,
            local=False,
        )
    assert s.conn.execute("SELECT count(*) FROM check_reports").fetchone()[0] == 12 + 200


def test_campaigns_signed_by_a_peer_cannot_grow_the_operator_view_without_bound(tmp_path: Path) -> None:
    """Any campaign name is valid in a check op, and each makes its own `campaign` register: a node in scope for
    one State could sign thousands of campaigns per change-set (with made-up channel ids), and /v1/checks — polled
    by every open dashboard every 3 s — listed every one.  It lists the 50 with the latest results."""
    import json

    from pocsync.api import checks as api_checks

    _, s = _store(tmp_path)
    for i in range(120):
        ch = f"email:{i:064x}"
        s.conn.execute(
            "INSERT INTO records (ns, key, origin, op, hlc, cs_id, idx, seq, author, entry) VALUES "
            "('campaign', ?, 'un', 'check', ?, 'x', ?, 1, 'a', ?)",
            (
                f"flood-{i}/DEU/technical/{ch}",
                f"{T0 + i:013d}-0000",
                i,
                json.dumps(
                    {
                        "op": "check",
                        "key": "DEU/technical",
                        "channel": ch,
                        "result": "sent",
                        "campaign": f"flood-{i}",
                        "deadline_ms": T0 + HOUR,
                    }
                ),
            ),
        )
    rt = _rt(s, None)
    out = asyncio.run(api_checks.collect(rt))
    assert len(out["federation_campaigns"]) == 50
    assert "flood-119" in out["federation_campaigns"] and "flood-69" not in out["federation_campaigns"]


def test_a_relay_that_offers_no_starttls_gets_nothing_in_plaintext(tmp_path: Path) -> None:
    """STARTTLS stripping: a relay (or anyone on the path) that does not offer STARTTLS.  The client must stop
    before AUTH and before MAIL: the password and the message never go in plaintext (a regression test)."""
    from aiosmtpd.controller import Controller

    from tests.support.smtp import free_port

    seen: list[str] = []

    class Plain:
        async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            seen.append("MAIL")
            envelope.mail_from = address
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            seen.append("DATA")
            return "250 OK"

    port = free_port()
    ctl = Controller(
        Plain(),
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        authenticator=lambda *a: seen.append("AUTH"),
        ready_timeout=10,
    )
    ctl.start()
    try:
        pw = tmp_path / "pw"
        pw.write_text("s3cret-password\n")
        pw.chmod(0o600)
        s = mail.parse_settings(
            {
                "host": "127.0.0.1",
                "sender": "directory@example.org",
                "port": port,
                "user": "pocsync",
                "password_file": str(pw),
            },
            tmp_path,
        )
        assert s is not None
        msg = mail.build_message(s, to=["poc@example.org"], subject="s", body="b")
        import pytest as _pytest

        with _pytest.raises(mail.MailError) as e:
            asyncio.run(mail.send(s, msg))
        assert e.value.reason == "smtp_tls" and "s3cret" not in e.value.message
    finally:
        ctl.stop()
    assert seen == []


def test_the_poc_page_reads_only_its_own_entrys_check_registers(tmp_path: Path) -> None:
    """GET /v1/checks/waiting and the page's acknowledgement read the `check` registers.  They read and parsed
    every register of the federation (which any node in scope can grow with made-up channel ids) on the store
    thread for each PoC request; now an index range of the one entry key."""
    _, s = _store(tmp_path)
    for i in range(300):
        _foreign_sent(s, "FRA/technical", f"x{i}@example.org", at_ms=T0, deadline_ms=T0 + HOUR)
    ch = _foreign_sent(s, "DEU/technical", "cert-deu@example.org", at_ms=T0, deadline_ms=T0 + HOUR)
    rows = [0]

    def count_rows() -> int:
        rows[0] += 1
        return 0

    s.conn.set_progress_handler(count_rows, 100)
    assert [w["channel"] for w in campaigns.waiting_for(s, "DEU/technical", now_ms=T0 + 1)] == [ch]
    s.conn.set_progress_handler(None, 0)
    assert rows[0] < 5, rows[0]  # progress calls (every 100 VM steps): 0 with the index range, 21 with the scan


def test_an_internationalised_domain_is_written_as_ascii_in_to(tmp_path: Path) -> None:
    """An entry's address may have an internationalised domain.  It went into To as an RFC 2047 encoded-word
    inside the domain ('poc@=?utf-8?q?b=C3=BCcher?=.example'), which the standard parser flags as defective;
    written as its ASCII (IDNA) form it is one clean address, the one the relay is given."""
    import email
    import email.policy

    s = mail.parse_settings({"host": "127.0.0.1", "sender": "directory@example.org"}, tmp_path)
    assert s is not None
    m = mail.build_message(s, to=["poc@bücher.example"], subject="s", body="b")
    parsed = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
    assert parsed["To"].defects == ()
    assert [a.domain for a in parsed["To"].addresses] == ["xn--bcher-kva.example"]


def test_a_recipient_refused_with_a_reply_that_is_no_smtp_error_is_not_an_unsignable_bounce(tmp_path: Path) -> None:
    """aiosmtplib counts any RCPT reply but 250/251 as a refusal (e.g. '252 cannot verify').  Such a code became
    'bounced' with smtp_code None — an op the origin refuses (bad_check) — so the whole batch's change-set was
    refused after its mails had left, and every message of the batch was mailed again, with new tokens, every
    30 s.  A refusal without a 4xx/5xx code is retried; a bounce the node reports always carries its code."""
    from pocsync.core import checks

    _, s = _store(tmp_path)
    job = _job(s)
    with SmtpServer(tmp_path) as srv:

        async def odd(server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            return "252 2.1.5 cannot verify the user, will attempt delivery"

        assert srv._controller is not None
        srv._controller.handler.handle_RCPT = odd
        out = asyncio.run(check_loop._send(_send_rt(s), _smtp(tmp_path, srv), job))
    if out.status == "bounced":
        checks.check_op(job.key, job.channel, "bounced", campaign=job.campaign, smtp_code=out.smtp_code)
    assert out.status == "retry"


def test_token_send_names_only_the_addresses_the_relay_accepted(tmp_path: Path) -> None:
    """`token issue --send` printed and audited 'mailed to the entry's email 1, email 2' when the relay had
    refused email 2: the secretariat was told a mailbox got the token that never did."""
    from pocsync.cli import token_mail

    with SmtpServer(tmp_path, reject={"gone@example.org"}) as srv:
        cfg = SimpleNamespace(
            smtp=_smtp(tmp_path, srv),
            api=SimpleNamespace(public_url="https://eu.example.org", host_port=("127.0.0.1", 8080)),
            node=SimpleNamespace(organisation="EU directory (example)"),
        )
        nd = SimpleNamespace(config=cfg, node_id="eu")
        entry = {"emails": ["poc@example.org", "gone@example.org", "other@example.org"], "languages": ["en"]}
        labels = token_mail.send_token(nd, entry, "DEU/technical", "tok-" + "x" * 40, 7 * 86_400)  # type: ignore[arg-type]
        assert labels == ["email 1", "email 3"]
        assert srv.wait_for(1)[0]["To"] is not None


def test_one_failing_step_of_the_checks_loop_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop ran schedule, mailing, the deadline sweep, reports and the reminder in one try block: an
    unexpected error in mailing (anything not a PocsyncError, every second) meant no 'no_response' was ever
    signed, no report delivered and no reminder sent.  Each step is guarded on its own now."""
    from pocsync.live.runtime import RUNTIME
    from pocsync.node.daemon import CLIENT

    _, s = _store(tmp_path)
    rt = _rt(s, None)
    calls: list[str] = []

    async def boom(rt: Any) -> int:
        calls.append("mail")
        raise RuntimeError("unexpected")

    def rec(name: str, value: Any) -> Any:
        async def f(*a: Any) -> Any:
            calls.append(name)
            return value

        return f

    monkeypatch.setattr(check_loop, "run_campaigns", boom)
    monkeypatch.setattr(check_loop, "schedule", rec("schedule", None))
    monkeypatch.setattr(check_loop, "sweep", rec("sweep", 0))
    monkeypatch.setattr(check_loop, "deliver_reports", rec("reports", 0))
    monkeypatch.setattr(check_loop, "remind", rec("remind", False))

    async def stop(_: float) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(check_loop.asyncio, "sleep", stop)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(check_loop.check_loop({RUNTIME: rt, CLIENT: None}))
    assert calls == ["schedule", "mail", "sweep", "reports", "remind"]
    assert rt.counters["check_step_failed:mail"] == 1
