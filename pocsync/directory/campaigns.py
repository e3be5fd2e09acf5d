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

import hashlib
import json
import re
import secrets
import statistics
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pocsync.core import model
from pocsync.errors import ConfigError, EntryError, PocsyncError

from pocsync.core.checks import channel_id

CAMPAIGN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")
RESULTS = ("sent", "acknowledged", "no_response", "bounced", "answered", "no_answer", "wrong_number")
#: target statuses: waiting to be mailed, being mailed, mailed (waiting for the acknowledgement), results,
#: and the two that sign nothing: skipped (checked by a node within the window, or address changed) and
#: invalid (the address does not validate at send time)
STATUSES = ("pending", "sending", "sent", "acknowledged", "no_response", "bounced", "skipped", "invalid")
LANGUAGES = ("en", "fr", "es")
MESSAGES = Path(__file__).parent.parent / "messages"  # pocsync/messages
_LANGUAGE_NAMES = {"english": "en", "anglais": "en", "inglés": "en", "ingles": "en", "french": "fr",
                   "français": "fr", "francais": "fr", "francés": "fr", "frances": "fr", "spanish": "es",
                   "espagnol": "es", "español": "es", "espanol": "es", "castellano": "es"}
_DURATION = re.compile(r"^([0-9]{1,6})([smhd])\Z")
MIN_DEADLINE_S = 5
MAX_DEADLINE_S = 90 * 86_400


# --- small pure helpers ----------------------------------------------------------------
def parse_duration(text: str) -> int:
    """``48h``, ``2d``, ``30m``, ``20s`` → seconds (5 s to 90 days); ConfigError otherwise."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ConfigError(f"duration {text!r} must be a number followed by s, m, h or d (e.g. 48h)",
                          reason="bad_duration")
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86_400}[m.group(2)]
    if not MIN_DEADLINE_S <= seconds <= MAX_DEADLINE_S:
        raise ConfigError(f"duration {text!r} must be from {MIN_DEADLINE_S} s to 90 days", reason="bad_duration")
    return seconds


def language_of(entry: dict[str, Any]) -> str:
    """The entry's first language when a translation exists (en, fr, es), else English."""
    langs = entry.get("languages")
    if not isinstance(langs, list) or not langs or not isinstance(langs[0], str):
        return "en"
    first = langs[0].strip().casefold()
    code = first.replace("_", "-").split("-")[0]
    if code in LANGUAGES:
        return code
    return _LANGUAGE_NAMES.get(first, "en")


def new_token() -> tuple[str, str]:
    """(token for the link, its hash for the store): 256 random bits, URL-safe."""
    tok = secrets.token_urlsafe(32)
    return tok, token_hash(tok)


def token_hash(token: str) -> str:
    return hashlib.sha256(("pocsync-check-ack:" + token).encode("utf-8", "replace")).hexdigest()


def campaign_id(node: str, now_ms: int) -> str:
    t = datetime.fromtimestamp(now_ms / 1000, timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{node.lower()}-{t}"[:64]


def hlc_ms(hlc: str) -> int:
    try:
        return int(hlc.split("-")[0])
    except (ValueError, AttributeError):
        return 0


def emails_of(entry: dict[str, Any]) -> list[str]:
    emails = entry.get("emails")
    return [e for e in emails if isinstance(e, str)] if isinstance(emails, list) else []


# --- messages -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    language: str


def _template(name: str, language: str) -> tuple[str, str]:
    text = (MESSAGES / f"{name}.{language}.txt").read_text(encoding="utf-8")
    subject, _, body = text.partition("\n\n")
    return subject.removeprefix("Subject: ").strip(), body


KIND_WORDS = {"en": {"technical": "technical", "diplomatic": "diplomatic"},
              "fr": {"technical": "technique", "diplomatic": "diplomatique"},
              "es": {"technical": "técnico", "diplomatic": "diplomático"}}


def check_message(*, language: str, directory: str, key: str, link: str, page: str, deadline_ms: int) -> Message:
    """The check message for one channel of one entry: its State and kind, the directory, the link — nothing else
    of the entry and nothing of any other entry."""
    language = language if language in LANGUAGES else "en"
    state, kind = model.parse_key(key)
    subject, body = _template("check", language)
    values = {"directory": directory, "state": state, "kind": KIND_WORDS[language][kind], "link": link, "page": page,
              "deadline": datetime.fromtimestamp(deadline_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return Message(string.Template(subject).substitute(values), string.Template(body).substitute(values), language)


def text_message(name: str, language: str = "en", **values: str) -> Message:
    subject, body = _template(name, language)
    return Message(string.Template(subject).substitute(values), string.Template(body).substitute(values), language)


# --- the merged check records ---------------------------------------------------------------
def latest_checks(store: Any, key: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(entry key, channel id) -> the latest check op by hlc, from any origin: origin, result, hlc, campaign.
    ``key``: that entry's channels only (an index range, not every register of the federation)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    sql, args = "SELECT origin, hlc, entry FROM records WHERE ns='check'", ()
    if key is not None:
        sql, args = sql + " AND key >= ? AND key < ?", (key + "/", key + "/\U0010ffff")
    for r in store.conn.execute(sql, args):
        try:
            op = json.loads(r["entry"])
        except ValueError:
            continue
        if not isinstance(op, dict) or not isinstance(op.get("key"), str) or not isinstance(op.get("channel"), str):
            continue
        k = (op["key"], op["channel"])
        if k not in out or r["hlc"] > out[k]["hlc"]:
            out[k] = {"origin": r["origin"], "hlc": r["hlc"], "result": op.get("result"),
                      "campaign": op.get("campaign"), "deadline_ms": op.get("deadline_ms")}
    return out


def sent_pending_until(c: dict[str, Any]) -> int | None:
    """Until when a merged ``sent`` record is a check in flight: its deadline, but never more than the longest
    deadline a campaign can have after it was signed (``deadline_ms`` is any integer on the wire).  None for
    any other result or a ``sent`` without a deadline."""
    if c.get("result") != "sent" or not isinstance(c.get("deadline_ms"), int) or isinstance(c.get("deadline_ms"), bool):
        return None
    return min(c["deadline_ms"], hlc_ms(c["hlc"]) + MAX_DEADLINE_S * 1000)


def holds_channel(c: dict[str, Any], *, now_ms: int, window_ms: int) -> bool:
    """Whether another node's latest check keeps a campaign from mailing the channel (PROTOCOL.md §15.6): a
    result within the window, or a ``sent`` within the window whose deadline is still pending — a ``sent``
    left without a result after its deadline checked nothing."""
    if hlc_ms(c["hlc"]) < now_ms - window_ms:
        return False
    until = sent_pending_until(c)
    return until is None or now_ms < until


def scope_covers(store: Any) -> Callable[[str], bool]:
    from pocsync.directory.sources import scope_check

    return scope_check(store)


# --- planning ---------------------------------------------------------------------------------
@dataclass
class Selector:
    states: tuple[str, ...] = ()
    network: str = ""
    kinds: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"states": list(self.states), "network": self.network, "kinds": list(self.kinds)},
                          sort_keys=True)

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
            raise EntryError(f"--kinds: {k!r} is not one of {', '.join(model.KINDS)}", reason="unknown_kind",
                             field="kinds")
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


def create_campaign(store: Any, *, node: str, sel: Selector, deadline_s: int, started_by: str, now_ms: int,
                    max_per_entry: int = 5) -> dict[str, Any]:
    targets = plan_targets(store, sel, max_per_entry=max_per_entry)
    cid = campaign_id(node, now_ms)
    with store.transaction():
        n = 1
        base = cid
        while store.conn.execute("SELECT 1 FROM check_campaigns WHERE id=?", (cid,)).fetchone():
            n += 1
            cid = f"{base[:60]}-{n}"
        store.conn.execute("INSERT INTO check_campaigns (id, created_ms, deadline_seconds, selector, started_by, status)"
                           " VALUES (?,?,?,?,?,?)", (cid, now_ms, deadline_s, sel.to_json(), started_by,
                                                     "running" if targets else "done"))
        store.conn.executemany("INSERT INTO check_targets (campaign, key, channel, label, status) VALUES (?,?,?,?,?)",
                               [(cid, k, ch, label, "pending") for k, ch, label in targets])
        store.audit(actor=started_by, action="check.start", target=cid, result="ok",
                    detail=f"{len(targets)} channel(s), deadline {deadline_s} s")
    return {"campaign": cid, "channels": len(targets), "deadline_seconds": deadline_s}


def last_campaign_ms(store: Any, started_by: str | None = None) -> int | None:
    sql, args = "SELECT max(created_ms) FROM check_campaigns", ()
    if started_by is not None:
        sql, args = sql + " WHERE started_by=?", (started_by,)
    return store.conn.execute(sql, args).fetchone()[0]


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
        store.conn.execute("UPDATE check_targets SET status='pending', token_hash=NULL WHERE status='sending'")
        rows = store.conn.execute(
            "SELECT t.*, c.deadline_seconds FROM check_targets t JOIN check_campaigns c ON c.id = t.campaign "
            "WHERE t.status='pending' ORDER BY c.created_ms, t.key, t.label LIMIT ?", (limit,)).fetchall()
        if not rows:
            return jobs
        latest = latest_checks(store)
        covers = scope_covers(store)
        for r in rows:
            where = ("campaign=? AND key=? AND channel=?", (r["campaign"], r["key"], r["channel"]))
            row = store.entry(r["key"])
            entry = row["entry"] if row else None
            address = next((a for a in emails_of(entry or {}) if channel_id("email", a) == r["channel"]), None)
            if address is None or not covers(r["key"].split("/")[0]):
                store.conn.execute(f"UPDATE check_targets SET status='skipped', skipped_by='changed', result_ms=? "
                                   f"WHERE {where[0]}", (now_ms, *where[1]))
                continue
            prior = latest.get((r["key"], r["channel"]))
            if prior is not None and holds_channel(prior, now_ms=now_ms, window_ms=window_ms):
                store.conn.execute(f"UPDATE check_targets SET status='skipped', skipped_by=?, result_ms=? "
                                   f"WHERE {where[0]}", (prior["origin"], now_ms, *where[1]))
                continue
            tok, h = new_token()
            deadline = now_ms + r["deadline_seconds"] * 1000
            store.conn.execute(f"UPDATE check_targets SET status='sending', token_hash=?, deadline_ms=?, "
                               f"attempts=attempts+1 WHERE {where[0]}", (h, deadline, *where[1]))
            jobs.append(Job(r["campaign"], r["key"], r["channel"], r["label"], address, language_of(entry),
                            deadline, tok))
        _close_finished(store, now_ms)
    return jobs


@dataclass
class SendOutcome:
    job: Job
    status: str                 # sent | bounced | invalid | retry
    smtp_code: int | None = None
    error: str | None = None    # a reason word, never an address


def commit_batch(store: Any, outcomes: list[SendOutcome], *, now_ms: int, sign: Callable[[list[dict]], Any]) -> int:
    """Record what came of a batch and sign its ``sent`` / ``bounced`` ops in one change-set (one transaction).
    A target acknowledged meanwhile (the link used before this commit) keeps its acknowledgement."""
    ops: list[dict[str, Any]] = []
    with store.transaction():
        for o in outcomes:
            j = o.job
            where = (j.campaign, j.key, j.channel)
            cur = store.conn.execute("SELECT status, token_hash FROM check_targets WHERE campaign=? AND key=? AND "
                                     "channel=?", where).fetchone()
            if cur is None or cur["status"] != "sending" or cur["token_hash"] != token_hash(j.token):
                continue  # acknowledged meanwhile, or prepared again since (a stale job)
            if o.status == "sent":
                store.conn.execute("UPDATE check_targets SET status='sent', sent_ms=?, error=NULL WHERE campaign=? AND"
                                   " key=? AND channel=?", (now_ms, *where))
                ops.append({"op": "check", "key": j.key, "channel": j.channel, "result": "sent",
                            "campaign": j.campaign, "deadline_ms": j.deadline_ms})
            elif o.status == "bounced":
                store.conn.execute("UPDATE check_targets SET status='bounced', token_hash=NULL, smtp_code=?, "
                                   "result_ms=? WHERE campaign=? AND key=? AND channel=?",
                                   (o.smtp_code, now_ms, *where))
                ops.append({"op": "check", "key": j.key, "channel": j.channel, "result": "bounced",
                            "campaign": j.campaign, "smtp_code": o.smtp_code})
            elif o.status == "invalid":
                store.conn.execute("UPDATE check_targets SET status='invalid', token_hash=NULL, error=?, result_ms=? "
                                   "WHERE campaign=? AND key=? AND channel=?", (o.error, now_ms, *where))
            else:  # retry later (relay unavailable): a fresh token next time
                store.conn.execute("UPDATE check_targets SET status='pending', token_hash=NULL, error=? "
                                   "WHERE campaign=? AND key=? AND channel=?", (o.error, *where))
        if ops:
            sign(ops)
        _close_finished(store, now_ms)
    return len(ops)


def _close_finished(store: Any, now_ms: int) -> None:
    store.conn.execute(
        "UPDATE check_campaigns SET status='done', done_ms=? WHERE status='running' AND NOT EXISTS (SELECT 1 FROM "
        "check_targets t WHERE t.campaign = check_campaigns.id AND t.status IN ('pending', 'sending', 'sent'))",
        (now_ms,))


def sweep_deadlines(store: Any, *, now_ms: int, sign: Callable[[list[dict]], Any], limit: int = 200) -> int:
    """Sign ``no_response`` for every mailed target whose deadline passed unacknowledged (one change-set)."""
    with store.transaction():
        rows = store.conn.execute("SELECT campaign, key, channel FROM check_targets WHERE status='sent' AND "
                                  "deadline_ms <= ? ORDER BY deadline_ms LIMIT ?", (now_ms, limit)).fetchall()
        covers = scope_covers(store)
        ops = []
        for r in rows:
            store.conn.execute("UPDATE check_targets SET status='no_response', token_hash=NULL, result_ms=? "
                               "WHERE campaign=? AND key=? AND channel=?", (now_ms, r["campaign"], r["key"], r["channel"]))
            if covers(r["key"].split("/")[0]):  # a scope narrowed since: the result stays local
                ops.append({"op": "check", "key": r["key"], "channel": r["channel"], "result": "no_response",
                            "campaign": r["campaign"]})
        if ops:
            sign(ops)
        _close_finished(store, now_ms)
    return len(ops)


# --- acknowledging ----------------------------------------------------------------------------------
class AckRefused(PocsyncError):
    """A token that is unknown, used, expired or out of scope: one reason for all (nothing tells which)."""

    reason = "ack_refused"


def acknowledge_token(store: Any, token: str, *, now_ms: int, sign: Callable[[list[dict]], Any]) -> dict[str, Any]:
    """Use a link's token once: record ``acknowledged`` and sign it.  AckRefused alike for every failure."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise AckRefused("this link is not valid")
    h = token_hash(token)
    with store.transaction():
        r = store.conn.execute("SELECT * FROM check_targets WHERE token_hash=?", (h,)).fetchone()
        if r is None or r["status"] not in ("sent", "sending") or (r["deadline_ms"] or 0) <= now_ms:
            raise AckRefused("this link is not valid")
        return _ack(store, r, now_ms=now_ms, sign=sign, via="link")


def _ack(store: Any, r: Any, *, now_ms: int, sign: Callable[[list[dict]], Any], via: str) -> dict[str, Any]:
    sent = r["sent_ms"] or now_ms
    secs = max(0, (now_ms - sent) // 1000)
    store.conn.execute("UPDATE check_targets SET status='acknowledged', token_hash=NULL, result_ms=?, "
                       "response_seconds=? WHERE campaign=? AND key=? AND channel=?",
                       (now_ms, secs, r["campaign"], r["key"], r["channel"]))
    op = {"op": "check", "key": r["key"], "channel": r["channel"], "result": "acknowledged",
          "campaign": r["campaign"], "response_seconds": secs}
    if r["status"] == "sent":  # while 'sending', the batch's commit signs nothing for it; its 'sent' would lose
        sign([op])
    else:
        store.conn.execute("UPDATE check_targets SET sent_ms=? WHERE campaign=? AND key=? AND channel=?",
                           (now_ms, r["campaign"], r["key"], r["channel"]))
        sign([{**op, "result": "sent", "deadline_ms": r["deadline_ms"]}, op])
    _close_finished(store, now_ms)
    store.audit(actor=f"check:{via}", action="check.acknowledge", target=f"{r['key']} {r['label']}", result="ok",
                detail=f"campaign {r['campaign']}, {secs} s")
    return {"key": r["key"], "label": r["label"], "campaign": r["campaign"], "response_seconds": secs}


def waiting_for(store: Any, key: str, *, now_ms: int) -> list[dict[str, Any]]:
    """The checks waiting for an acknowledgement of ``key``'s channels: this node's mailed targets, and
    ``sent`` results of other nodes still within their deadline.  Labels only (no address)."""
    row = store.entry(key)
    emails = emails_of(row["entry"]) if row else []
    labels = {channel_id("email", a): f"email {i + 1}" for i, a in reversed(list(enumerate(emails)))}
    out: dict[str, dict[str, Any]] = {}
    for r in store.conn.execute("SELECT * FROM check_targets WHERE key=? AND status IN ('sent', 'sending') AND "
                                "deadline_ms > ?", (key, now_ms)):
        if r["channel"] in labels:
            out[r["channel"]] = {"channel": r["channel"], "label": labels[r["channel"]], "campaign": r["campaign"],
                                 "deadline_ms": r["deadline_ms"], "by": store.node_id}
    for (k, ch), c in latest_checks(store, key).items():
        until = sent_pending_until(c)
        if k == key and ch in labels and ch not in out and until is not None and until > now_ms:
            out[ch] = {"channel": ch, "label": labels[ch], "campaign": c["campaign"], "deadline_ms": until,
                       "by": c["origin"]}
    return sorted(out.values(), key=lambda x: x["label"])


def acknowledge_channel(store: Any, key: str, channel: str, *, now_ms: int,
                        sign: Callable[[list[dict]], Any]) -> dict[str, Any]:
    """A signed-in PoC acknowledges a waiting check of its own entry's channel from the PoC page."""
    with store.transaction():
        r = store.conn.execute("SELECT * FROM check_targets WHERE key=? AND channel=? AND status='sent' AND "
                               "deadline_ms > ? ORDER BY sent_ms DESC LIMIT 1", (key, channel, now_ms)).fetchone()
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
        sign([{"op": "check", "key": key, "channel": channel, "result": "acknowledged", "campaign": campaign,
               "response_seconds": secs}])
        store.audit(actor="check:page", action="check.acknowledge", target=key, result="ok",
                    detail=f"checked by {c['origin']}, {secs} s")
        return {"key": key, "campaign": campaign, "response_seconds": secs}


# --- reports: the status of campaigns (no contact data) ------------------------------------------
def _quantile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1])


def campaign_status(store: Any, campaign: str | None = None) -> list[dict[str, Any]]:
    """Per campaign: counts by status, by origin (of the entry's winning version) and by State, response-time
    median and 90th percentile, and who checked the skipped channels.  Keys, labels and node ids only."""
    origin_of = {r["key"]: r["origin"] for r in store.conn.execute("SELECT key, origin FROM view")}
    out = []
    sql = "SELECT * FROM check_campaigns" + (" WHERE id=?" if campaign else "") + " ORDER BY created_ms DESC"
    for c in store.conn.execute(sql, (campaign,) if campaign else ()):
        counts = {s: 0 for s in STATUSES}
        by_origin: dict[str, dict[str, int]] = {}
        by_state: dict[str, dict[str, int]] = {}
        skipped_by: dict[str, int] = {}
        times: list[int] = []
        codes: dict[str, int] = {}
        for t in store.conn.execute("SELECT * FROM check_targets WHERE campaign=?", (c["id"],)):
            st = t["status"]
            counts[st] += 1
            for bucket, name in ((by_origin, origin_of.get(t["key"], "(gone)")), (by_state, t["key"].split("/")[0])):
                b = bucket.setdefault(name, {s: 0 for s in STATUSES})
                b[st] += 1
            if st == "skipped":
                skipped_by[t["skipped_by"] or "?"] = skipped_by.get(t["skipped_by"] or "?", 0) + 1
            if st == "acknowledged" and t["response_seconds"] is not None:
                times.append(t["response_seconds"])
            if st == "bounced" and t["smtp_code"]:
                codes[str(t["smtp_code"])] = codes.get(str(t["smtp_code"]), 0) + 1
        mailed = counts["sent"] + counts["acknowledged"] + counts["no_response"]
        out.append({"campaign": c["id"], "created_ms": c["created_ms"], "deadline_seconds": c["deadline_seconds"],
                    "selector": json.loads(c["selector"]), "started_by": c["started_by"], "status": c["status"],
                    "channels": sum(counts.values()), "mailed": mailed, "counts": counts,
                    "awaiting": counts["sent"], "by_origin": dict(sorted(by_origin.items())),
                    "by_state": dict(sorted(by_state.items())), "skipped_by": dict(sorted(skipped_by.items())),
                    "bounce_codes": dict(sorted(codes.items())),
                    "response_seconds": {"median": _quantile(sorted(times), 0.5), "p90": _quantile(sorted(times), 0.9),
                                         "n": len(times)}})
    return out


def checked_by(store: Any) -> dict[str, dict[str, int]]:
    """Who checked what (the merged records): origin -> result -> channels whose latest check it signed."""
    out: dict[str, dict[str, int]] = {}
    for c in latest_checks(store).values():
        d = out.setdefault(c["origin"], {})
        d[str(c["result"])] = d.get(str(c["result"]), 0) + 1
    return dict(sorted(out.items()))


# --- PoC reports of wrong entries, overdue counts ---------------------------------------------------
#: reports kept per day from one PoC (at the node where it signed in) and from one forwarding peer: each report is
#: a mail to a secretariat, and the request rate limits alone let one token holder send ~170 000 a day
REPORTS_PER_REPORTER_PER_DAY = 10
REPORTS_PER_PEER_PER_DAY = 200


class ReportRefused(PocsyncError):
    reason = "rate_limited"


def add_report(store: Any, *, key: str, origin: str, reporter: str, received_from: str, text: str,
               now_ms: int, local: bool = True) -> str:
    """Keep a report (``local``: made by a PoC signed in here; else forwarded by ``received_from``).
    ReportRefused when that PoC, or that peer, reached its reports for the last 24 hours."""
    with store.transaction():
        since = now_ms - 86_400_000
        if local:
            n = store.conn.execute("SELECT count(*) FROM check_reports WHERE reporter=? AND received_from=? AND "
                                   "at_ms > ?", (reporter, received_from, since)).fetchone()[0]
            cap = REPORTS_PER_REPORTER_PER_DAY
        else:
            n = store.conn.execute("SELECT count(*) FROM check_reports WHERE received_from=? AND at_ms > ?",
                                   (received_from, since)).fetchone()[0]
            cap = REPORTS_PER_PEER_PER_DAY
        if n >= cap:
            raise ReportRefused(f"at most {cap} reports a day from {'one PoC' if local else 'one node'}; "
                                "the secretariat has the earlier ones")
        store.conn.execute("INSERT INTO check_reports (at_ms, key, origin, reporter, received_from, text) "
                           "VALUES (?,?,?,?,?,?)", (now_ms, key, origin, reporter, received_from, text))
        store.audit(actor=reporter, action="check.report", target=key, result="ok",
                    detail=f"for {origin}, via {received_from}")
    return origin


def mark_report(store: Any, n: int, state: int) -> None:
    """1: mailed to this node's contact_email; 2: forwarded to the origin node."""
    with store.transaction():
        store.conn.execute("UPDATE check_reports SET mailed=? WHERE n=?", (state, n))


def reports_by_origin(store: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in store.conn.execute("SELECT origin, mailed, count(*) AS n FROM check_reports GROUP BY origin, mailed"):
        d = out.setdefault(r["origin"], {"received": 0, "mailed": 0, "forwarded": 0, "waiting": 0})
        d["received"] += r["n"]
        d[{0: "waiting", 1: "mailed", 2: "forwarded"}.get(r["mailed"], "waiting")] += r["n"]
    return dict(sorted(out.items()))


def overdue_rows(store: Any, now_ms: int) -> list[dict[str, Any]]:
    """Overdue entries by the federation's freshness policy (PROTOCOL.md §15): key, origin, reasons."""
    return [{"key": f["key"], "origin": f["origin"], "reasons": list(f["overdue"].get("reasons") or ["overdue"])}
            for f in store.freshness(now_ms_=now_ms) if f["overdue"]]


def overdue_by_origin(store: Any, now_ms: int) -> dict[str, int]:
    return store.overdue_counts(now_ms_=now_ms)
