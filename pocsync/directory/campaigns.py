"""Communication-check campaigns by mail (issue 15, ADR 26, ADR 27): planning, tokens, results.

A campaign is node-local state (the ``check_campaigns`` and ``check_targets`` tables): which channel of
which entry is to be mailed, and what came of it.  What travels is the signed ``check`` op (PROTOCOL.md
§15): ``sent`` with its deadline when a message left, ``bounced`` with the SMTP reply code when the relay
refused the recipient, ``acknowledged`` with the response time when the link (or the PoC page) was used,
``no_response`` when the deadline passed.  The daemon signs them (:mod:`pocsync.node.check_loop`).

Nothing here keeps an address: a target names its entry key and channel id (SHA-256 of the normalised
address); the address is read from the entry at send time and must still hash to the same id.  The
acknowledgement token is 256 random bits, kept only as its SHA-256, single-use, valid until the deadline
and bound to one (key, channel).  Every function takes the store and runs on the store thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pocsync.core import model
from pocsync.core.checks import CAMPAIGN_RE as CAMPAIGN_RE  # re-exported
from pocsync.core.checks import channel_id
from pocsync.directory.checkacks import AckRefused as AckRefused  # re-exported: callers use campaigns.<name>
from pocsync.directory.checkacks import acknowledge_channel as acknowledge_channel
from pocsync.directory.checkacks import acknowledge_token as acknowledge_token
from pocsync.directory.checkacks import new_token as new_token
from pocsync.directory.checkacks import token_hash as token_hash
from pocsync.directory.checkacks import waiting_for as waiting_for
from pocsync.directory.checkmail import KIND_WORDS as KIND_WORDS  # re-exported: callers use campaigns.<name>
from pocsync.directory.checkmail import LANGUAGES as LANGUAGES
from pocsync.directory.checkmail import Message as Message
from pocsync.directory.checkmail import check_message as check_message
from pocsync.directory.checkmail import emails_of as emails_of
from pocsync.directory.checkmail import language_of as language_of
from pocsync.directory.checkmail import text_message as text_message
from pocsync.directory.checkrecords import MAX_DEADLINE_S as MAX_DEADLINE_S  # re-exported
from pocsync.directory.checkrecords import MIN_DEADLINE_S as MIN_DEADLINE_S
from pocsync.directory.checkrecords import RESULTS as RESULTS
from pocsync.directory.checkrecords import STATUSES as STATUSES
from pocsync.directory.checkrecords import hlc_ms as hlc_ms
from pocsync.directory.checkrecords import holds_channel as holds_channel
from pocsync.directory.checkrecords import latest_checks as latest_checks
from pocsync.directory.checkrecords import scope_covers as scope_covers
from pocsync.directory.checkrecords import sent_pending_until as sent_pending_until
from pocsync.directory.checkreports import REPORTS_PER_PEER_PER_DAY as REPORTS_PER_PEER_PER_DAY  # re-exported
from pocsync.directory.checkreports import REPORTS_PER_REPORTER_PER_DAY as REPORTS_PER_REPORTER_PER_DAY
from pocsync.directory.checkreports import ReportRefused as ReportRefused
from pocsync.directory.checkreports import add_report as add_report
from pocsync.directory.checkreports import campaign_status as campaign_status
from pocsync.directory.checkreports import checked_by as checked_by
from pocsync.directory.checkreports import mark_report as mark_report
from pocsync.directory.checkreports import overdue_by_origin as overdue_by_origin
from pocsync.directory.checkreports import overdue_rows as overdue_rows
from pocsync.directory.checkreports import reports_by_origin as reports_by_origin
from pocsync.errors import ConfigError, EntryError
from pocsync.store import queries

_DURATION = re.compile(r"^([0-9]{1,6})([smhd])\Z")


# --- small pure helpers ----------------------------------------------------------------
def parse_duration(text: str) -> int:
    """``48h``, ``2d``, ``30m``, ``20s`` → seconds (5 s to 90 days); ConfigError otherwise."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ConfigError(
            f"duration {text!r} must be a number followed by s, m, h or d (e.g. 48h)", reason="bad_duration"
        )
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86_400}[m.group(2)]
    if not MIN_DEADLINE_S <= seconds <= MAX_DEADLINE_S:
        raise ConfigError(f"duration {text!r} must be from {MIN_DEADLINE_S} s to 90 days", reason="bad_duration")
    return seconds


def campaign_id(node: str, now_ms: int) -> str:
    t = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%d-%H%M%S")
    return f"{node.lower()}-{t}"[:64]


# --- planning ---------------------------------------------------------------------------------
@dataclass
class Selector:
    states: tuple[str, ...] = ()
    network: str = ""
    kinds: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {"states": list(self.states), "network": self.network, "kinds": list(self.kinds)}, sort_keys=True
        )

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.states and entry.get("state") not in self.states:
            return False
        if self.network and self.network not in (entry.get("networks") or []):
            return False
        return not self.kinds or entry.get("kind") in self.kinds


def selector(states: str = "", network: str = "", kinds: str = "") -> Selector:
    """From the CLI's comma-separated lists; EntryError naming the bad item."""
    sts = tuple(s.strip().upper() for s in states.split(",") if s.strip())
    for s in sts:
        if not model.STATE_RE.match(s):
            raise EntryError(f"--states: {s!r} is not an ISO 3166-1 alpha-3 code", reason="bad_key", field="states")
    kds = tuple(k.strip() for k in kinds.split(",") if k.strip())
    for k in kds:
        if k not in model.KINDS:
            raise EntryError(
                f"--kinds: {k!r} is not one of {', '.join(model.KINDS)}", reason="unknown_kind", field="kinds"
            )
    if sts and network:
        raise EntryError("give --states or --network, not both", reason="bad_selector", field="states")
    return Selector(sts, network.strip(), kds)


def plan_targets(store: Any, sel: Selector, *, max_per_entry: int) -> list[tuple[str, str, str]]:
    """(key, channel id, label) for every email channel of every live entry in this node's scope that ``sel``
    matches — at most ``max_per_entry`` channels per entry, distinct channels only."""
    covers = scope_covers(store)
    out: list[tuple[str, str, str]] = []
    for row in store.entries():
        e = row["entry"]
        if not isinstance(e, dict) or not sel.matches(e):
            continue
        try:
            state, _ = model.parse_key(row["key"])
        except EntryError:
            continue
        if not covers(state):
            continue
        seen: set[str] = set()
        for i, addr in enumerate(emails_of(e)):
            ch = channel_id("email", addr)
            if ch in seen:
                continue
            seen.add(ch)
            if len(seen) > max_per_entry:
                break
            out.append((row["key"], ch, f"email {i + 1}"))
    return out


def create_campaign(
    store: Any, *, node: str, sel: Selector, deadline_s: int, started_by: str, now_ms: int, max_per_entry: int = 5
) -> dict[str, Any]:
    targets = plan_targets(store, sel, max_per_entry=max_per_entry)
    cid = campaign_id(node, now_ms)
    with store.transaction():
        n = 1
        base = cid
        while queries.campaign_exists(store.conn, cid):
            n += 1
            cid = f"{base[:60]}-{n}"
        queries.add_campaign(
            store.conn,
            cid,
            created_ms=now_ms,
            deadline_s=deadline_s,
            selector=sel.to_json(),
            started_by=started_by,
            targets=targets,
        )
        store.audit(
            actor=started_by,
            action="check.start",
            target=cid,
            result="ok",
            detail=f"{len(targets)} channel(s), deadline {deadline_s} s",
        )
    return {"campaign": cid, "channels": len(targets), "deadline_seconds": deadline_s}


def last_campaign_ms(store: Any, started_by: str | None = None) -> int | None:
    return queries.last_campaign_ms(store.conn, started_by)


# --- sending --------------------------------------------------------------------------------------
@dataclass
class Job:
    campaign: str
    key: str
    channel: str
    label: str
    address: str = field(repr=False)
    language: str
    deadline_ms: int
    token: str = field(repr=False)


def prepare_batch(store: Any, *, now_ms: int, limit: int, window_ms: int) -> list[Job]:
    """Up to ``limit`` pending targets made ready to mail: each gets a fresh token (its hash stored, status
    ``sending``).  A target whose channel was checked by any node (any result, any origin) within
    ``window_ms`` is skipped and names that node; one whose address is no longer in the entry is skipped."""
    jobs: list[Job] = []
    with store.transaction():
        rows = queries.pending_targets(store.conn, limit)
        if not rows:
            return jobs
        latest = latest_checks(store)
        covers = scope_covers(store)
        for r in rows:
            target = (r["campaign"], r["key"], r["channel"])
            row = store.entry(r["key"])
            entry = row["entry"] if row else None
            address = next((a for a in emails_of(entry or {}) if channel_id("email", a) == r["channel"]), None)
            if address is None or not covers(r["key"].split("/")[0]):
                queries.skip_target(store.conn, target, skipped_by="changed", now_ms=now_ms)
                continue
            prior = latest.get((r["key"], r["channel"]))
            if prior is not None and holds_channel(prior, now_ms=now_ms, window_ms=window_ms):
                queries.skip_target(store.conn, target, skipped_by=prior["origin"], now_ms=now_ms)
                continue
            tok, h = new_token()
            deadline = now_ms + r["deadline_seconds"] * 1000
            queries.start_sending(store.conn, target, token_hash=h, deadline_ms=deadline)
            jobs.append(
                Job(r["campaign"], r["key"], r["channel"], r["label"], address, language_of(entry or {}), deadline, tok)
            )
        _close_finished(store, now_ms)
    return jobs


@dataclass
class SendOutcome:
    job: Job
    status: str  # sent | bounced | invalid | retry
    smtp_code: int | None = None
    error: str | None = None  # a reason word, never an address


def commit_batch(
    store: Any, outcomes: list[SendOutcome], *, now_ms: int, sign: Callable[[list[dict[str, Any]]], Any]
) -> int:
    """Record what came of a batch and sign its ``sent`` / ``bounced`` ops in one change-set (one transaction).
    A target acknowledged meanwhile (the link used before this commit) keeps its acknowledgement."""
    ops: list[dict[str, Any]] = []
    with store.transaction():
        for o in outcomes:
            j = o.job
            where = (j.campaign, j.key, j.channel)
            cur = queries.target_state(store.conn, where)
            if cur is None or cur["status"] != "sending" or cur["token_hash"] != token_hash(j.token):
                continue  # acknowledged meanwhile, or prepared again since (a stale job)
            if o.status == "sent":
                queries.mark_sent(store.conn, where, now_ms=now_ms)
                ops.append(
                    {
                        "op": "check",
                        "key": j.key,
                        "channel": j.channel,
                        "result": "sent",
                        "campaign": j.campaign,
                        "deadline_ms": j.deadline_ms,
                    }
                )
            elif o.status == "bounced":
                queries.mark_bounced(store.conn, where, smtp_code=o.smtp_code, now_ms=now_ms)
                ops.append(
                    {
                        "op": "check",
                        "key": j.key,
                        "channel": j.channel,
                        "result": "bounced",
                        "campaign": j.campaign,
                        "smtp_code": o.smtp_code,
                    }
                )
            elif o.status == "invalid":
                queries.mark_invalid(store.conn, where, error=o.error, now_ms=now_ms)
            else:  # retry later (relay unavailable): a fresh token next time
                queries.mark_retry(store.conn, where, error=o.error)
        if ops:
            sign(ops)
        _close_finished(store, now_ms)
    return len(ops)


def _close_finished(store: Any, now_ms: int) -> None:
    queries.close_finished_campaigns(store.conn, now_ms)


def sweep_deadlines(store: Any, *, now_ms: int, sign: Callable[[list[dict[str, Any]]], Any], limit: int = 200) -> int:
    """Sign ``no_response`` for every mailed target whose deadline passed unacknowledged (one change-set)."""
    with store.transaction():
        rows = queries.past_deadline(store.conn, now_ms, limit)
        covers = scope_covers(store)
        ops = []
        for r in rows:
            queries.mark_no_response(store.conn, (r["campaign"], r["key"], r["channel"]), now_ms=now_ms)
            if covers(r["key"].split("/")[0]):  # a scope narrowed since: the result stays local
                ops.append(
                    {
                        "op": "check",
                        "key": r["key"],
                        "channel": r["channel"],
                        "result": "no_response",
                        "campaign": r["campaign"],
                    }
                )
        if ops:
            sign(ops)
        _close_finished(store, now_ms)
    return len(ops)
