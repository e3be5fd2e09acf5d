"""Communication checks over HTTP (issue 15, ADR 26, ADR 27).

* ``GET /check/ack?token=…`` — the page a check message links to: one button, no script; a GET records
  nothing (mail scanners follow links).  ``Referrer-Policy: no-referrer``; the token reaches the access
  log only redacted (``token=`` is a credential for :func:`pocsync.ops.logs.redact`).
* ``POST /check/ack`` (form field ``token``) — uses the token once: ``acknowledged`` with the response time,
  signed by this node.  An unknown, used or expired token gets one answer, whichever it was.
  Rate-limited per client address.
* ``GET /v1/checks/waiting`` (PoC) — the checks of the signed-in PoC's own entry waiting for an answer.
* ``POST /v1/checks/acknowledge`` (PoC) — ``{"channel": "email:<hex>"}``: acknowledge one of them from the page.
* ``POST /v1/checks/report`` (PoC) — ``{"key": "DEU/technical", "text": "…"}``: "this entry is wrong", mailed to
  the secretariat of the entry's origin (forwarded to that node by ``POST /v1/peer/check-report``).
* ``GET /v1/checks`` (operator) — campaigns with counts by status, origin and State, response times, who
  checked, overdue entries and reports per origin: no contact data (channels are "email 1").
"""

from __future__ import annotations

import html
import re
from typing import Any

from aiohttp import web

from pocsync import clock
from pocsync.api.auth import requires
from pocsync.api.peer import RateLimiter, signed
from pocsync.api.problems import problem
from pocsync.api.web import CSP
from pocsync.core import jsonc, model
from pocsync.core.peerauth import PeerRequest
from pocsync.directory import campaigns, freetext
from pocsync.errors import PocsyncError
from pocsync.live.actions import checks_status, signer
from pocsync.live.runtime import RUNTIME
from pocsync.tokens import Claims

ACK_LIMITER = web.AppKey("ack_limiter", RateLimiter)
REPORT_LIMITER = web.AppKey("report_limiter", RateLimiter)
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}\Z")
CHANNEL_RE = re.compile(r"^(email|phone):[0-9a-f]{64}\Z")
MAX_FORM = 1024
MAX_JSON = 8 * 1024
REPORT_MAX_CHARS = 2000
PEER_REPORT_MAX_BYTES = 16 * 1024
#: a forwarded report's at_ms may not be further ahead of this node's clock than this (a time a peer claims)
PEER_REPORT_MAX_AHEAD_MS = 86_400_000
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Type": "text/html; charset=utf-8",
}


def now_ms() -> int:
    return clock.now_ms()


def _page(title: str, body: str, status: int = 200) -> web.Response:
    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/static/style.css"></head>'
        f'<body><main class="ack">{body}</main></body></html>'
    )
    return web.Response(
        status=status,
        text=doc,
        headers={k: v for k, v in PAGE_HEADERS.items() if k != "Content-Type"},
        content_type="text/html",
        charset="utf-8",
    )


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The whole body, or None when it is longer than ``cap`` (read in chunks: ``read(n)`` may stop early)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    buf = bytearray()
    async for chunk in request.content.iter_any():
        buf += chunk
        if len(buf) > cap:
            return None
    return bytes(buf)


def _node_name(rt: Any) -> str:
    return html.escape(rt.cfg.node.organisation or f"pocsync node {rt.me}")


async def ack_page(request: web.Request) -> web.Response:
    """The page the link opens: it checks nothing and records nothing.  A link without a token of the right
    shape (cut off by a mail program, say) says so at once instead of offering a button that cannot work."""
    token = request.query.get("token", "")
    if not TOKEN_RE.match(token):
        return _page("This link is not valid", REFUSED, status=400)
    rt = request.app[RUNTIME]
    body = (
        f"<h1>Communication check</h1>"
        f"<p>{_node_name(rt)} asks you to confirm that this mailbox of a Point of Contact works.</p>"
        f'<p lang="fr">Confirmez que cette adresse d\'un point de contact fonctionne.</p>'
        f'<p lang="es">Confirme que esta dirección de un punto de contacto funciona.</p>'
        f'<form method="post" action="/check/ack">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        f'<button type="submit" id="acknowledge">Acknowledge / Accuser réception / Acusar recibo</button></form>'
        f"<p>Nothing is recorded until you press the button. You can also acknowledge from the PoC page "
        f'(<a href="/">sign in</a>).</p>'
    )
    return _page("Communication check", body)


REFUSED = (
    "<h1>This link is not valid</h1><p>It may have been used already, or its deadline passed. "
    'You can acknowledge from the PoC page (<a href="/">sign in</a>).</p>'
    '<p lang="fr">Ce lien n\'est pas valable.</p><p lang="es">Este enlace no es válido.</p>'
)


async def ack_post(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if not request.app[ACK_LIMITER].allow(request.remote or "?"):
        rt.counters["check_ack:rate_limited"] += 1
        return _page("Too many requests", "<h1>Too many requests</h1><p>Try again in a minute.</p>", status=429)
    raw = await _read_capped(request, MAX_FORM)
    token = ""
    if raw is not None:
        from urllib.parse import parse_qs

        try:
            token = (parse_qs(raw.decode("ascii"), max_num_fields=4).get("token") or [""])[0]
        except (UnicodeDecodeError, ValueError):
            token = ""
    t = now_ms()
    make = signer(rt)
    try:
        if not TOKEN_RE.match(token):
            raise campaigns.AckRefused("this link is not valid")
        out = await rt.worker.run(lambda s: campaigns.acknowledge_token(s, token, now_ms=t, sign=make(s)))
    except campaigns.AckRefused:
        rt.counters["check_ack:refused"] += 1
        return _page("This link is not valid", REFUSED, status=400)
    except PocsyncError as exc:  # valid, but this node cannot sign now (feature off, signing blocked): kept unused
        rt.counters[f"check_ack:not_recorded:{exc.reason}"] += 1
        return _page(
            "Not recorded",
            "<h1>Not recorded yet</h1><p>This node cannot record your acknowledgement "
            "right now. Please try the link again later.</p>",
            status=503,
        )
    rt.counters["check_ack:acknowledged"] += 1
    rt.publish_now.set()
    return _page(
        "Thank you",
        f"<h1>Thank you</h1><p>Your acknowledgement is recorded by {_node_name(rt)} "
        f"({int(out['response_seconds'])} s after the message was sent).</p>"
        '<p lang="fr">Merci, c\'est enregistré.</p><p lang="es">Gracias, queda registrado.</p>',
    )


def _limited(request: web.Request, limiter: RateLimiter, key: str) -> web.Response | None:
    if limiter.allow(key):
        return None
    request.app[RUNTIME].counters["check_api:rate_limited"] += 1
    return problem(429, "too many requests", "try again shortly", reason="rate_limited", headers={"Retry-After": "1"})


def _read_limit(request: web.Request, claims: Claims) -> web.Response | None:
    """The directory's per-token read rate (READ_LIMITER), counted as a checks request."""
    from pocsync.api.directory import READ_LIMITER

    return _limited(request, request.app[READ_LIMITER], claims.jti)


def _report_limit(request: web.Request, claims: Claims) -> web.Response | None:
    """Reports per subject (REPORT_LIMITER)."""
    return _limited(request, request.app[REPORT_LIMITER], claims.subject)


async def _json(request: web.Request) -> Any:
    raw = await _read_capped(request, MAX_JSON)
    if raw is None:
        raise PocsyncError("body too large", reason="bad_request")
    data = jsonc.loads(raw)
    if not isinstance(data, dict):
        raise PocsyncError("send a JSON object", reason="bad_request")
    return data


@requires("directory", limit=_read_limit)
async def waiting(request: web.Request, claims: Claims) -> web.Response:
    rt = request.app[RUNTIME]
    t = now_ms()
    rows = await rt.worker.run(lambda s: campaigns.waiting_for(s, claims.subject, now_ms=t))
    return web.json_response({"key": claims.subject, "waiting": rows})


@requires("directory", limit=_read_limit)
async def acknowledge(request: web.Request, claims: Claims) -> web.Response:
    """A PoC acknowledges a waiting check of one of its own entry's channels (never another entry's)."""
    rt = request.app[RUNTIME]
    try:
        data = await _json(request)
    except PocsyncError:
        return problem(400, "bad request", 'send {"channel": "email:<hex>"}', reason="bad_request")
    channel = data.get("channel")
    if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
        return problem(400, "bad request", 'send {"channel": "email:<hex>"}', reason="bad_request")
    t = now_ms()
    make = signer(rt)
    try:
        out = await rt.worker.run(
            lambda s: campaigns.acknowledge_channel(s, claims.subject, channel, now_ms=t, sign=make(s))
        )
    except campaigns.AckRefused as exc:
        return problem(409, "nothing to acknowledge", exc.message, reason="nothing_waiting")
    except PocsyncError as exc:
        return problem(503, "not recorded", f"this node cannot record it now: {exc.reason}", reason=exc.reason)
    rt.counters["check_ack:acknowledged_page"] += 1
    rt.publish_now.set()
    return web.json_response({"acknowledged": True, "key": out["key"], "response_seconds": out["response_seconds"]})


@requires("directory", limit=_report_limit)
async def report(request: web.Request, claims: Claims) -> web.Response:
    """ "This entry is wrong": kept here, mailed to (or forwarded to) the secretariat of the entry's origin."""
    rt = request.app[RUNTIME]
    try:
        data = await _json(request)
        key, text = data.get("key"), data.get("text")
        model.parse_key(key)
        if not isinstance(text, str) or model.blank(text):
            raise PocsyncError("text must be a non-empty string", reason="bad_request")
    except PocsyncError as exc:
        return problem(
            400, "bad request", f'send {{"key": "DEU/technical", "text": "…"}}: {exc.message}', reason="bad_request"
        )
    text = freetext.clean(text[:REPORT_MAX_CHARS], multiline=True)
    t = now_ms()

    def keep(store: Any) -> str | None:
        row = store.entry(key)
        if row is None:
            return None
        return campaigns.add_report(
            store, key=key, origin=row["origin"], reporter=claims.subject, received_from=rt.me, text=text, now_ms=t
        )

    try:
        origin = await rt.worker.run(keep)
    except campaigns.ReportRefused as exc:
        rt.counters["check_api:rate_limited"] += 1
        return problem(429, "too many reports", exc.message, reason="rate_limited", headers={"Retry-After": "3600"})
    if origin is None:
        return problem(404, "not found", f"{key} is not in the directory", reason="not_found")
    rt.counters["check_reports_received"] += 1
    return web.json_response({"reported": True, "key": key, "to": origin}, status=202)


@signed
async def peer_report(request: web.Request, peer: PeerRequest) -> web.Response:
    """A report forwarded by the node where the PoC signed in (signed peer request)."""
    rt = request.app[RUNTIME]
    try:
        raw = await request.read()
        if len(raw) > PEER_REPORT_MAX_BYTES:
            raise PocsyncError("report too large", reason="bad_request")
        data = jsonc.loads(raw)
        key, text, reporter, at = data["key"], data["text"], data["reporter"], data["at_ms"]
        model.parse_key(key)
        if not (
            isinstance(text, str)
            and isinstance(reporter, str)
            and isinstance(at, int)
            and not isinstance(at, bool)
            and 0 <= at <= now_ms() + PEER_REPORT_MAX_AHEAD_MS
        ):
            raise PocsyncError("bad report", reason="bad_request")
    except (PocsyncError, KeyError, TypeError):
        return problem(400, "bad request", "malformed report", reason="bad_request")
    text = freetext.clean(text[:REPORT_MAX_CHARS], multiline=True)
    reporter = freetext.clean(reporter[:64])
    t = now_ms()  # kept with the time it was received here: at_ms is the peer's claim
    try:
        await rt.worker.run(
            lambda s: campaigns.add_report(
                s, key=key, origin=rt.me, reporter=reporter, received_from=peer.node, text=text, now_ms=t, local=False
            )
        )
    except campaigns.ReportRefused as exc:
        rt.counters["check_api:rate_limited"] += 1
        return problem(429, "too many reports", exc.message, reason="rate_limited", headers={"Retry-After": "3600"})
    rt.counters["check_reports_received"] += 1
    return web.json_response({"ok": True})


@requires("health")
async def operator_view(request: web.Request, who: Claims) -> web.Response:
    rt = request.app[RUNTIME]
    return web.json_response(await collect(rt))


async def collect(rt: Any) -> dict[str, Any]:
    """The operator's view of checks (dashboard, /metrics): no address, no token, no report text."""
    t = now_ms()

    def read(store: Any) -> dict[str, Any]:
        return {
            "campaigns": campaigns.campaign_status(store)[:50],
            "checked_by": campaigns.checked_by(store),
            "overdue_by_origin": campaigns.overdue_by_origin(store, t),
            "reports_by_origin": campaigns.reports_by_origin(store),
            "federation_campaigns": store.campaign_counts(limit=50),
        }

    out = await rt.worker.run(read)
    st = dict(checks_status(rt))
    return {
        "node": rt.me,
        **out,
        "mail": {
            k: st[k]
            for k in (
                "smtp",
                "last_error",
                "last_error_at",
                "messages_sent",
                "bounced",
                "invalid",
                "no_response_signed",
                "reminders_sent",
                "reports_mailed",
                "reports_forwarded",
                "campaigns_held",
            )
        },
    }


def add_routes(app: web.Application) -> None:
    per_s = app[RUNTIME].cfg.checks.ack_requests_per_second
    app[ACK_LIMITER] = RateLimiter(per_s)
    app[REPORT_LIMITER] = RateLimiter(per_s)
    app.router.add_get("/check/ack", ack_page)
    app.router.add_post("/check/ack", ack_post)
    app.router.add_get("/v1/checks/waiting", waiting)
    app.router.add_post("/v1/checks/acknowledge", acknowledge)
    app.router.add_post("/v1/checks/report", report)
    app.router.add_post("/v1/peer/check-report", peer_report)
    app.router.add_get("/v1/checks", operator_view)
