"""Acknowledging communication checks (issue 15, ADR 26, ADR 27): the link's token, the link, the PoC page.

The acknowledgement token is 256 random bits, kept only as its SHA-256, single-use, valid until the deadline
and bound to one (key, channel).  Every function takes the store and runs on the store thread; campaigns
re-exports the public names (:mod:`pocsync.directory.campaigns`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from pocsync.core.checks import CAMPAIGN_RE, channel_id
from pocsync.directory.checkmail import emails_of
from pocsync.directory.checkrecords import hlc_ms, latest_checks, scope_covers, sent_pending_until
from pocsync.errors import PocsyncError
from pocsync.store import queries


def new_token() -> tuple[str, str]:
    """(token for the link, its hash for the store): 256 random bits, URL-safe."""
    tok = secrets.token_urlsafe(32)
    return tok, token_hash(tok)


def token_hash(token: str) -> str:
    return hashlib.sha256(("pocsync-check-ack:" + token).encode("utf-8", "replace")).hexdigest()


# --- acknowledging ----------------------------------------------------------------------------------
class AckRefused(PocsyncError):
    """A token that is unknown, used, expired or out of scope: one reason for all (nothing tells which)."""

    reason = "ack_refused"


def acknowledge_token(
    store: Any, token: str, *, now_ms: int, sign: Callable[[list[dict[str, Any]]], Any]
) -> dict[str, Any]:
    """Use a link's token once: record ``acknowledged`` and sign it.  AckRefused alike for every failure."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise AckRefused("this link is not valid")
    h = token_hash(token)
    with store.transaction():
        r = queries.target_by_token(store.conn, h)
        if r is None or r["status"] not in ("sent", "sending") or (r["deadline_ms"] or 0) <= now_ms:
            raise AckRefused("this link is not valid")
        return _ack(store, r, now_ms=now_ms, sign=sign, via="link")


def _ack(store: Any, r: Any, *, now_ms: int, sign: Callable[[list[dict[str, Any]]], Any], via: str) -> dict[str, Any]:
    sent = r["sent_ms"] or now_ms
    secs = max(0, (now_ms - sent) // 1000)
    target = (r["campaign"], r["key"], r["channel"])
    queries.mark_acknowledged(store.conn, target, now_ms=now_ms, response_seconds=secs)
    op = {
        "op": "check",
        "key": r["key"],
        "channel": r["channel"],
        "result": "acknowledged",
        "campaign": r["campaign"],
        "response_seconds": secs,
    }
    if r["status"] == "sent":  # while 'sending', the batch's commit signs nothing for it; its 'sent' would lose
        sign([op])
    else:
        queries.set_sent_ms(store.conn, target, now_ms)
        sign([{**op, "result": "sent", "deadline_ms": r["deadline_ms"]}, op])
    queries.close_finished_campaigns(store.conn, now_ms)
    store.audit(
        actor=f"check:{via}",
        action="check.acknowledge",
        target=f"{r['key']} {r['label']}",
        result="ok",
        detail=f"campaign {r['campaign']}, {secs} s",
    )
    return {"key": r["key"], "label": r["label"], "campaign": r["campaign"], "response_seconds": secs}


def waiting_for(store: Any, key: str, *, now_ms: int) -> list[dict[str, Any]]:
    """The checks waiting for an acknowledgement of ``key``'s channels: this node's mailed targets, and
    ``sent`` results of other nodes still within their deadline.  Labels only (no address)."""
    row = store.entry(key)
    emails = emails_of(row["entry"]) if row else []
    labels = {channel_id("email", a): f"email {i + 1}" for i, a in reversed(list(enumerate(emails)))}
    out: dict[str, dict[str, Any]] = {}
    for r in queries.awaiting_targets(store.conn, key, now_ms):
        if r["channel"] in labels:
            out[r["channel"]] = {
                "channel": r["channel"],
                "label": labels[r["channel"]],
                "campaign": r["campaign"],
                "deadline_ms": r["deadline_ms"],
                "by": store.node_id,
            }
    for (k, ch), c in latest_checks(store, key).items():
        until = sent_pending_until(c)
        if k == key and ch in labels and ch not in out and until is not None and until > now_ms:
            out[ch] = {
                "channel": ch,
                "label": labels[ch],
                "campaign": c["campaign"],
                "deadline_ms": until,
                "by": c["origin"],
            }
    return sorted(out.values(), key=lambda x: x["label"])


def acknowledge_channel(
    store: Any, key: str, channel: str, *, now_ms: int, sign: Callable[[list[dict[str, Any]]], Any]
) -> dict[str, Any]:
    """A signed-in PoC acknowledges a waiting check of its own entry's channel from the PoC page."""
    with store.transaction():
        r = queries.last_sent_target(store.conn, key, channel, now_ms)
        if r is not None:
            return _ack(store, r, now_ms=now_ms, sign=sign, via="page")
        c = latest_checks(store, key).get((key, channel))
        until = sent_pending_until(c) if c is not None else None
        if c is None or until is None or until <= now_ms:
            raise AckRefused("no check of this channel is waiting for an acknowledgement")
        if not scope_covers(store)(key.split("/")[0]):
            raise AckRefused(f"this node cannot record checks of {key}: sign in at {c['origin']}'s page")
        secs = max(0, (now_ms - hlc_ms(c["hlc"])) // 1000)
        campaign = c["campaign"] if isinstance(c["campaign"], str) and CAMPAIGN_RE.match(c["campaign"]) else None
        sign(
            [
                {
                    "op": "check",
                    "key": key,
                    "channel": channel,
                    "result": "acknowledged",
                    "campaign": campaign,
                    "response_seconds": secs,
                }
            ]
        )
        store.audit(
            actor="check:page",
            action="check.acknowledge",
            target=key,
            result="ok",
            detail=f"checked by {c['origin']}, {secs} s",
        )
        return {"key": key, "campaign": campaign, "response_seconds": secs}
