"""What the checks loop (:mod:`pocsync.node.check_loop`) sends the secretariat: the weekly reminder to
``contact_email`` while any entry is overdue, and the PoC reports of wrong entries (mailed to
``contact_email`` when they concern this node's entries, forwarded to their origin node otherwise).

Log lines name keys, counts and reasons — never an address, a token or a report's text.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC
from typing import Any

import aiohttp

from pocsync import clock
from pocsync.directory import campaigns
from pocsync.errors import PocsyncError
from pocsync.live.actions import checks_status as _status
from pocsync.store import queries

log = logging.getLogger("pocsync.checks")


def now_ms() -> int:
    return clock.now_ms()


def smtp_settings(cfg: Any) -> Any:
    return getattr(cfg, "smtp", None)


# --- the weekly overdue reminder -----------------------------------------------------------------
def overdue_keys(store: Any, now: int) -> list[dict[str, Any]]:
    """Entries of this node's scope that the freshness policy marks overdue (pocsync.directory.freshness)."""
    rows = campaigns.overdue_rows(store, now)
    covers = campaigns.scope_covers(store)
    return [r for r in rows if covers(r["key"].split("/")[0])]


async def remind(rt: Any) -> bool:
    st = _status(rt)
    settings, to = smtp_settings(rt.cfg), getattr(rt.cfg, "contact_email", None)
    if settings is None or not to:
        return False
    t = now_ms()
    last = await rt.worker.run(lambda s: s.get_meta("checks_last_reminder_ms"))
    if last is not None and t - int(last) < rt.cfg.checks.reminder_days * 86_400_000:
        return False
    rows = await rt.worker.run(lambda s: overdue_keys(s, t))
    if not rows:
        return False
    from pocsync import mail

    lines = "\n".join(f"  {r['key']}: {', '.join(r.get('reasons') or r.get('why') or ['overdue'])}" for r in rows[:500])
    text = campaigns.text_message(
        "reminder", count=str(len(rows)), plural="y" if len(rows) == 1 else "ies", node=rt.me, lines=lines
    )
    try:
        msg = mail.build_message(
            settings, to=[to], subject=text.subject, body=text.body, headers={"Auto-Submitted": "auto-generated"}
        )
        await mail.send(settings, msg)
    except PocsyncError as exc:
        st.update(last_error=f"reminder: {exc.reason}", last_error_at=time.time())
        log.warning("overdue reminder not sent: %s", exc.reason)
        return False
    await rt.worker.run(lambda s: s.set_meta("checks_last_reminder_ms", str(t)))
    st["reminders_sent"] += 1
    st["last_reminder_ms"] = t
    rt.counters["check_reminders_sent"] += 1
    log.info(
        "overdue reminder sent to the secretariat (%d entries)",
        len(rows),
        extra={"fields": {"event": "check_reminder", "count": len(rows)}},
    )
    return True


# --- PoC reports of wrong entries ------------------------------------------------------------------
REPORTS_PER_DESTINATION = 5


def _waiting_reports(store: Any) -> list[dict[str, Any]]:
    """The oldest few waiting reports of each destination (origin node): one destination that cannot be reached
    (no endpoint, left the federation, down) holds back only its own reports."""
    return queries.waiting_reports(store.conn, REPORTS_PER_DESTINATION)


async def deliver_reports(rt: Any, client: Any | None) -> int:
    """Mail reports about this node's entries to contact_email; forward the others to their origin node."""
    rows = await rt.worker.run(_waiting_reports)
    done, failed, stuck = 0, False, set()
    for r in rows:
        if r["origin"] in stuck:
            continue
        try:
            if r["origin"] == rt.me:
                ok = await _mail_report(rt, r)
                status = "mailed"
            else:
                ok = await _forward_report(rt, client, r)
                status = "forwarded"
        except (TimeoutError, PocsyncError, aiohttp.ClientError, OSError) as exc:
            reason = getattr(exc, "reason", type(exc).__name__)
            _status(rt).update(last_error=f"report: {reason}", last_error_at=time.time())
            log.warning("report %d about %s not delivered: %s", r["n"], r["key"], reason)
            stuck.add(r["origin"])
            failed = True
            continue
        if not ok:
            stuck.add(r["origin"])
            continue
        await rt.worker.run(campaigns.mark_report, r["n"], 1 if status == "mailed" else 2)
        _status(rt)[f"reports_{status}"] += 1
        rt.counters[f"check_reports_{status}"] += 1
        done += 1
    return -1 if failed else done


def quote(text: str) -> str:
    """A PoC's words as a quote: every line starts with "> ", so none can pass for the mail's own text (a forged
    closing line of dashes followed by 'instructions')."""
    return "\n".join("> " + line for line in str(text).splitlines() or [""])


async def _mail_report(rt: Any, r: dict[str, Any]) -> bool:
    settings, to = smtp_settings(rt.cfg), getattr(rt.cfg, "contact_email", None)
    if settings is None or not to:
        return False
    from datetime import datetime

    from pocsync import mail

    try:  # at_ms of a forwarded report is a peer's claim: a time no datetime holds must not end the loop
        at = datetime.fromtimestamp(r["at_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError, TypeError):
        at = "(unknown time)"
    text = campaigns.text_message(
        "report",
        key=r["key"],
        node=r["received_from"],
        origin=r["origin"],
        reporter=r["reporter"],
        at=at,
        text=quote(r["text"]),
    )
    msg = mail.build_message(
        settings, to=[to], subject=text.subject, body=text.body, headers={"Auto-Submitted": "auto-generated"}
    )
    await mail.send(settings, msg)
    return True


async def _forward_report(rt: Any, client: Any | None, r: dict[str, Any]) -> bool:
    if client is None:
        return False
    m = await rt.manifest()
    node = m.node(r["origin"])
    url = node.endpoints.get("http") if node is not None and not node.removed else None
    if not url:
        return False
    body = json.dumps(
        {"key": r["key"], "reporter": r["reporter"], "text": r["text"], "at_ms": r["at_ms"]}, ensure_ascii=False
    ).encode()
    await client._get(url, "/v1/peer/check-report", target=r["origin"], cap=4096, method="POST", body=body)
    return True
