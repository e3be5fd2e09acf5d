"""``pocsync-checks``: the daemon's side of communication checks by mail (issue 15, ADR 26).

Every few seconds: start the scheduled campaign when one is due (``[checks] every_days``), mail a
batch of pending channels through the ``[smtp]`` relay and sign what came of it (``sent`` with its
deadline, ``bounced`` with the SMTP reply code) as one change-set, sign ``no_response`` for mailed
channels whose deadline passed, mail the PoC reports of wrong entries to ``contact_email`` (or forward
them to their origin node), and remind ``contact_email`` weekly while any entry is overdue (those two:
:mod:`pocsync.node.check_notices`).

Log lines name campaigns, counts and reasons — never an address, a token or a report's text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pocsync.directory import campaigns
from pocsync.errors import PocsyncError
from pocsync.live.actions import checks_status as _status
from pocsync.live.actions import signer
from pocsync.node.check_notices import deliver_reports as deliver_reports
from pocsync.node.check_notices import now_ms as now_ms
from pocsync.node.check_notices import quote as quote
from pocsync.node.check_notices import remind as remind
from pocsync.node.check_notices import smtp_settings as smtp_settings
from pocsync.transport.http import CLIENT

log = logging.getLogger("pocsync.checks")
POLL_SECONDS = 1.0
RETRY_SECONDS = 30.0  # after the relay was unavailable
REPORT_MAX_CHARS = 2000


def directory_name(rt: Any) -> str:
    return rt.cfg.node.organisation or f"pocsync node {rt.me}"


def public_url(rt: Any) -> str:
    url: str = rt.cfg.api.public_url
    if not url:
        host, port = rt.cfg.api.host_port
        url = f"http://{host}:{port}"
    return url.rstrip("/")


async def _send(rt: Any, settings: Any, job: campaigns.Job) -> campaigns.SendOutcome:
    from pocsync import mail

    base = public_url(rt)
    text = campaigns.check_message(
        language=job.language,
        directory=directory_name(rt),
        key=job.key,
        link=f"{base}/check/ack?token={job.token}",
        page=f"{base}/",
        deadline_ms=job.deadline_ms,
    )
    try:
        msg = mail.build_message(
            settings,
            to=[job.address],
            subject=text.subject,
            body=text.body,
            headers={"Auto-Submitted": "auto-generated", "X-Pocsync-Campaign": job.campaign},
            language=text.language,
        )
    except PocsyncError as exc:
        return campaigns.SendOutcome(job, "invalid", error=exc.reason)
    try:
        res = await mail.send(settings, msg)
    except PocsyncError as exc:
        code = _refused_code(exc, job.address)
        if code is not None:
            return campaigns.SendOutcome(job, "bounced", smtp_code=code)
        return campaigns.SendOutcome(job, "retry", error=exc.reason)
    refused = {a.lower(): v for a, v in (res.refused or {}).items()}
    if job.address.lower() in refused or (refused and not res.accepted):
        code = (
            next(iter(refused.values()))[0] if job.address.lower() not in refused else refused[job.address.lower()][0]
        )
        if _code(code) is None:  # refused with a reply that is no SMTP error (e.g. 252): no bounce a peer accepts
            return campaigns.SendOutcome(job, "retry", error="smtp_odd_reply")
        return campaigns.SendOutcome(job, "bounced", smtp_code=_code(code))
    return campaigns.SendOutcome(job, "sent")


def _code(code: Any) -> int | None:
    return code if isinstance(code, int) and 400 <= code <= 599 else None


def _refused_code(exc: PocsyncError, address: str) -> int | None:
    """The SMTP reply code of ``address`` when the relay refused that recipient (a MailError whose detail names
    per-recipient refusals), else None.  Any other refusal (sender, message, STARTTLS, a 4xx/5xx from whoever
    answers on the path) is no verdict on the channel: it is retried, never signed as a bounce."""
    if exc.reason != "smtp_refused":
        return None
    detail = getattr(exc, "detail", None) or {}
    refused = detail.get("refused") if isinstance(detail, dict) else None
    if isinstance(refused, dict):
        for a, v in refused.items():
            if isinstance(a, str) and a.lower() == address.lower():
                return _code(v[0] if isinstance(v, (list, tuple)) else v)
    return None


def _why_not(store: Any) -> str | None:
    m = store.require_manifest()
    if "comm-checks" not in m.features:
        return "the manifest does not enable feature comm-checks"
    blocked: str | None = store.signing_blocked()
    return blocked


async def held(rt: Any) -> str | None:
    """Why this node may not sign check results now (then it mails nothing: a mail whose result cannot be
    signed would go again), or None."""
    st = _status(rt)
    why: str | None = await rt.worker.run(_why_not)
    st["campaigns_held"] = why
    return why


async def run_campaigns(rt: Any) -> int:
    """Mail one batch of pending channels and sign the results; returns how many messages left."""
    st = _status(rt)
    settings = smtp_settings(rt.cfg)
    if settings is None:
        st["smtp"] = "not configured"
        return 0
    st["smtp"] = "configured"
    cc = rt.cfg.checks
    if await held(rt):
        return 0
    t = now_ms()
    jobs = await rt.worker.run(
        lambda s: campaigns.prepare_batch(s, now_ms=t, limit=cc.send_batch, window_ms=cc.window_days * 86_400_000)
    )
    if not jobs:
        return 0
    outcomes = []
    for job in jobs:
        outcomes.append(await _send(rt, settings, job))
    make = signer(rt)
    t = now_ms()
    try:
        signed = await rt.worker.run(lambda s: campaigns.commit_batch(s, outcomes, now_ms=t, sign=make(s)))
    except PocsyncError as exc:  # mailed but not recorded: held back (a restart re-mails them with new tokens)
        st.update(last_error=f"results not signed: {exc.reason}", last_error_at=time.time())
        log.error("check mail: %d message(s) sent but their results could not be signed: %s", len(outcomes), exc.reason)
        return -1
    n = {k: sum(1 for o in outcomes if o.status == k) for k in ("sent", "bounced", "invalid", "retry")}
    st["messages_sent"] += n["sent"]
    st["bounced"] += n["bounced"]
    st["invalid"] += n["invalid"]
    for k, v in n.items():
        if v:
            rt.counters[f"check_messages:{k}"] += v
    if signed:
        rt.publish_now.set()
    if n["retry"]:
        reasons = sorted({o.error or "?" for o in outcomes if o.status == "retry"})
        st.update(last_error=", ".join(reasons), last_error_at=time.time())
        log.warning("check mail: %d message(s) not sent (%s); retried later", n["retry"], ", ".join(reasons))
    log.info(
        "check mail: %d sent, %d bounced, %d invalid address(es), %d to retry; %d op(s) signed",
        n["sent"],
        n["bounced"],
        n["invalid"],
        n["retry"],
        signed,
        extra={"fields": {"event": "check_batch", **n, "ops": signed}},
    )
    return n["sent"] if not n["retry"] else -1


async def sweep(rt: Any) -> int:
    if await held(rt):
        return 0
    make = signer(rt)
    t = now_ms()
    n: int = await rt.worker.run(lambda s: campaigns.sweep_deadlines(s, now_ms=t, sign=make(s)))
    if n:
        _status(rt)["no_response_signed"] += n
        rt.counters["check_no_response"] += n
        rt.publish_now.set()
        log.info(
            "checks: %d channel(s) did not answer by the deadline (no_response signed)",
            n,
            extra={"fields": {"event": "check_no_response", "count": n}},
        )
    return n


async def schedule(rt: Any) -> str | None:
    cc = rt.cfg.checks
    if cc.every_days <= 0:
        return None
    t = now_ms()

    def due(store: Any) -> dict[str, Any] | None:
        last = campaigns.last_campaign_ms(store)
        if last is not None and t - last < cc.every_days * 86_400_000:
            return None
        sel = campaigns.selector(kinds=",".join(cc.kinds))
        return campaigns.create_campaign(
            store,
            node=rt.me,
            sel=sel,
            deadline_s=cc.deadline_hours * 3600,
            started_by="schedule",
            now_ms=t,
            max_per_entry=max_recipients(rt),
        )

    out: dict[str, Any] | None = await rt.worker.run(due)
    if out:
        log.info(
            "checks: scheduled campaign %s started (%d channel(s))",
            out["campaign"],
            out["channels"],
            extra={"fields": {"event": "check_campaign", "campaign": out["campaign"], "channels": out["channels"]}},
        )
        campaign: str = out["campaign"]
        return campaign
    return None


def max_recipients(rt: Any) -> int:
    settings = smtp_settings(rt.cfg)
    return getattr(settings, "max_recipients", 5) or 5


async def _step(rt: Any, name: str, run: Any) -> Any:
    """One step of the loop, guarded on its own: a failure is counted and named (its type and reason only: an
    exception's text may hold an address), and the other steps still run."""
    try:
        return await run()
    except asyncio.CancelledError:
        raise
    except PocsyncError as exc:
        _status(rt).update(last_error=exc.reason, last_error_at=time.time())
        log.warning("checks: %s: %s: %s", name, exc.reason, exc.message[:200])
    except Exception as exc:
        rt.counters[f"check_step_failed:{name}"] += 1
        _status(rt).update(last_error=f"{name}: {type(exc).__name__}", last_error_at=time.time())
        log.error("checks: %s failed (%s); the other steps go on", name, type(exc).__name__)
    return None


async def check_loop(app: Any) -> None:
    from pocsync.live.runtime import RUNTIME

    rt = app[RUNTIME]
    _status(rt)
    client = None
    retry_at = reports_at = 0.0
    while True:
        if client is None:
            client = app.get(CLIENT)
        await _step(rt, "schedule", lambda: schedule(rt))
        if time.monotonic() >= retry_at:
            sent = await _step(rt, "mail", lambda: run_campaigns(rt))
            if sent is None or sent < 0:
                retry_at = time.monotonic() + RETRY_SECONDS
        await _step(rt, "sweep", lambda: sweep(rt))
        if time.monotonic() >= reports_at:
            done = await _step(rt, "reports", lambda: deliver_reports(rt, client))  # noqa: B023 (awaited at once)
            if done is None or done < 0:
                reports_at = time.monotonic() + RETRY_SECONDS
        await _step(rt, "remind", lambda: remind(rt))
        await asyncio.sleep(POLL_SECONDS)
