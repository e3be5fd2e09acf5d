"""Hostile inputs to communication checks (issue 15, attack review): a peer's report, the relay's refusals,
report text, stale campaign claims.  Real SQLite store, real SMTP server (aiosmtpd, STARTTLS)."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pocsync import campaigns, mail
from pocsync.node import check_loop
from pocsync.store import Store
from tests.support.fed import T0, Fed, put
from tests.support.smtp import SmtpServer


def _store(tmp_path: Path, node: str = "eu") -> tuple[Fed, Store]:
    fed = Fed()
    s = Store.create(tmp_path / f"{node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    s.edit([put("DEU/technical", emails=["cert-deu@example.org"])], key=fed.key(node, "k1"), author="staff",
           now_ms_=T0)
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
    s = mail.parse_settings({"host": "127.0.0.1", "sender": "directory@example.org", "port": srv.port,
                             "user": srv.user, "password_file": str(srv.password_file),
                             "ca_file": str(srv.ca_file)}, tmp_path)
    assert s is not None
    return s


def test_a_forwarded_report_with_an_impossible_time_neither_ends_the_loop_nor_blocks_later_reports(
        tmp_path: Path) -> None:
    """A peer's at_ms is its claim: 2**53-1 ms is a year no datetime holds.  Before the fix the ValueError
    escaped deliver_reports (the checks task crashed and restarted every second; reminders and every later
    report never went out)."""
    _, s = _store(tmp_path)
    campaigns.add_report(s, key="DEU/technical", origin="eu", reporter="FRA/technical", received_from="osce",
                         text="poisoned time", now_ms=2**53 - 1)
    campaigns.add_report(s, key="DEU/technical", origin="eu", reporter="ITA/technical", received_from="osce",
                         text="a later report", now_ms=T0)
    with SmtpServer(tmp_path) as srv:
        rt = _rt(s, _smtp(tmp_path, srv))
        assert asyncio.run(check_loop.deliver_reports(rt, None)) == 2
        got = srv.wait_for(2)
        bodies = [m.get_content() for m in got]
        assert any("poisoned time" in b for b in bodies) and any("a later report" in b for b in bodies)
    assert s.conn.execute("SELECT count(*) FROM check_reports WHERE mailed=0").fetchone()[0] == 0
