"""Communication checks and freshness (PROTOCOL.md §15, ADR 24 and 25): op rules and pure derivations.

Two op kinds, each behind its own feature:

* ``check`` (feature ``comm-checks``, namespace ``check``): the result of checking one channel of one
  entry.  ``{"op": "check", "key": "DEU/technical", "channel": "email:<hex>", "result": "acknowledged",
  "campaign": "eu-2026-q4" | null, "deadline_ms": int (sent), "response_seconds": int (acknowledged),
  "smtp_code": int (bounced)}``.  A channel is named by the SHA-256 of its normalised value
  (:func:`channel_id`), never by its position, so a changed address has no verification until checked.
* ``confirm`` (feature ``freshness``, namespace ``confirm``): the origin confirms an entry without
  changing it.  ``{"op": "confirm", "key": "DEU/technical"}``.

Both concern the State of their entry key: only a node whose scope covers it may sign them.

Effects (every one a last-writer-wins register by rank ``(hlc, origin, change-set id, op index)``, so
any order and any duplicates give the same records; each record is one digest line):

* ``check  <State>/<kind>/<channel>``: the latest result of the channel;
* ``verified <State>/<kind>/<channel>``: the latest *positive* result (acknowledged, answered) — a
  later ``sent`` or ``no_response`` does not erase it;
* ``campaign <campaign>/<State>/<kind>/<channel>``: the latest result of the channel within one
  campaign (ops with a campaign only), for campaign counts;
* ``confirm <State>/<kind>``: the latest confirmation.

Pure: no I/O, no clock — freshness is judged against a ``now_ms`` the caller passes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pocsync.core import model
from pocsync.errors import EntryError, ManifestError

CHANNEL_KINDS = ("email", "phone")
CHANNEL_RE = re.compile(r"^(email|phone):[0-9a-f]{64}\Z")
CAMPAIGN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")
#: results valid on each channel kind
RESULTS: dict[str, tuple[str, ...]] = {
    "email": ("sent", "acknowledged", "no_response", "bounced"),
    "phone": ("answered", "no_answer", "wrong_number"),
}
ALL_RESULTS = RESULTS["email"] + RESULTS["phone"]
POSITIVE = frozenset({"acknowledged", "answered"})
#: the member each result requires (and that every other result must leave absent or null)
RESULT_FIELDS = {"sent": "deadline_ms", "acknowledged": "response_seconds", "bounced": "smtp_code"}
MAX_INT = 2**53 - 1

NS_CHECK, NS_VERIFIED, NS_CAMPAIGN, NS_CONFIRM = "check", "verified", "campaign", "confirm"
DAY_MS = 86_400_000


# --- channels -------------------------------------------------------------------------------------------
def normalise(kind: str, value: str) -> str:
    """The channel value that is hashed: email stripped and lower-cased; phone as E.164 (``+`` and digits).

    An entry's phones are E.164 already (the origin writes them so, §7.1); spaces, dots, hyphens and
    brackets some sources keep are dropped so that the same number always gives the same id.
    """
    if kind == "email":
        return value.strip().lower()
    if kind == "phone":
        s = value.strip()
        digits = "".join(ch for ch in s if "0" <= ch <= "9")
        return ("+" if s.startswith("+") else "") + digits
    raise ValueError(f"unknown channel kind {kind!r}")


def channel_id(kind: str, value: str) -> str:
    """``"<kind>:<hex of SHA-256 of the normalised value>"`` (PROTOCOL.md §15.1)."""
    return f"{kind}:{hashlib.sha256(normalise(kind, value).encode('utf-8')).hexdigest()}"


def channels(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, channel id) of an entry's channels, in order: ``email 1``, ``email 2``…, ``phone 1``…

    Labels name positions (for people and dashboards); ids name values (for ops).  A repeated value
    keeps its first label.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for kind, field in (("email", "emails"), ("phone", "phones")):
        values = entry.get(field) or []
        for n, value in enumerate(values, start=1):
            if not isinstance(value, str):
                continue
            cid = channel_id(kind, value)
            if cid not in seen:
                seen.add(cid)
                out.append((f"{kind} {n}", cid))
    return out


def resolve_channel(entry: Mapping[str, Any], spec: str) -> str:
    """``email:N`` / ``phone:N`` (1-based position in the entry now) → the channel id."""
    m = re.fullmatch(r"(email|phone):([1-9][0-9]{0,2})", spec or "")
    if m is None:
        raise EntryError(
            f"channel {spec!r} must be email:N or phone:N (N from 1, the entry's N-th address or number)",
            reason="bad_channel",
            field="channel",
        )
    kind, n = m.group(1), int(m.group(2))
    values = entry.get("emails" if kind == "email" else "phones") or []
    if n > len(values) or not isinstance(values[n - 1], str):
        raise EntryError(
            f"the entry has {len(values)} {kind}(s): there is no {kind} {n}", reason="bad_channel", field="channel"
        )
    return channel_id(kind, values[n - 1])


# --- receipt rules ------------------------------------------------------------------------------------------
def entry_key_state(key: object) -> str:
    """The State of an entry key (``DEU/technical``); raises EntryError(bad_key)."""
    if not isinstance(key, str):
        raise EntryError(f'key {key!r} must be "<ISO3>/<kind>"', reason="bad_key", field="key")
    return model.parse_key(key)[0]


def _int(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_check(raw: Mapping[str, Any], cs_hlc: str, policy: Mapping[str, Any]) -> None:
    """The own rules of a ``check`` op (§15.2), in order; the first failing gives ``bad_check``."""

    def bad(msg: str, field: str) -> None:
        raise EntryError(msg, reason="bad_check", field=field)

    channel = raw.get("channel")
    if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
        bad('channel must be "email:<64 hex>" or "phone:<64 hex>"', "channel")
    kind = channel.split(":", 1)[0]  # type: ignore[union-attr]
    result = raw.get("result")
    if not isinstance(result, str) or result not in RESULTS[kind]:
        bad(
            f"result of {'an' if kind == 'email' else 'a'} {kind} check must be one of {', '.join(RESULTS[kind])}",
            "result",
        )
    campaign = raw.get("campaign")
    if campaign is not None and not (isinstance(campaign, str) and CAMPAIGN_RE.match(campaign)):
        bad(f"campaign must be null or match {CAMPAIGN_RE.pattern}", "campaign")
    for res, field in RESULT_FIELDS.items():
        v = raw.get(field)
        if res != result:
            if v is not None:
                bad(f"{field} belongs to a {res} result only", field)
            continue
        lo, hi = (400, 599) if field == "smtp_code" else (0, MAX_INT)
        if not _int(v, lo, hi):
            bad(f"a {res} result needs {field}, an integer from {lo} to {hi}", field)


def check_op(
    key: str,
    channel: str,
    result: str,
    *,
    campaign: str | None = None,
    deadline_ms: int | None = None,
    response_seconds: int | None = None,
    smtp_code: int | None = None,
) -> dict[str, Any]:
    """A ``check`` op with exactly the members its result takes (raises EntryError like a peer would refuse it)."""
    op: dict[str, Any] = {"op": "check", "key": key, "channel": channel, "result": result, "campaign": campaign}
    for name, value in (("deadline_ms", deadline_ms), ("response_seconds", response_seconds), ("smtp_code", smtp_code)):
        if value is not None:
            op[name] = value
    entry_key_state(key)
    check_check(op, "", {})
    return op


def check_confirm(raw: Mapping[str, Any], cs_hlc: str, policy: Mapping[str, Any]) -> None:
    """A ``confirm`` op has no rules beyond its key and scope."""


def check_records(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (namespace, record key) registers an effective ``check`` op updates (§15.3)."""
    base = f"{raw['key']}/{raw['channel']}"
    out = [(NS_CHECK, base)]
    if raw["result"] in POSITIVE:
        out.append((NS_VERIFIED, base))
    if raw.get("campaign") is not None:
        out.append((NS_CAMPAIGN, f"{raw['campaign']}/{base}"))
    return out


def confirm_records(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(NS_CONFIRM, raw["key"])]


# --- policy (manifest policy.freshness) ---------------------------------------------------------------------
DEFAULT_CONFIRM_DAYS = 365
DEFAULT_VERIFY_DAYS = 180
MAX_DAYS = 3650


def _days(value: Mapping[str, Any], where: str) -> None:
    extra = set(value) - {"confirm_days", "verify_days"}
    if extra:
        raise ManifestError(f"{where} has unknown members {sorted(extra)}")
    for name in ("confirm_days", "verify_days"):
        if name in value and not _int(value[name], 1, MAX_DAYS):
            raise ManifestError(f"{where}.{name} must be an integer from 1 to {MAX_DAYS}")


def check_freshness_policy(value: Mapping[str, Any]) -> None:
    """``policy.freshness``: ``{"confirm_days", "verify_days", "networks": {name: {...}}}`` (§15.5)."""
    extra = set(value) - {"confirm_days", "verify_days", "networks"}
    if extra:
        raise ManifestError(f"policy.freshness has unknown members {sorted(extra)}")
    _days({k: v for k, v in value.items() if k != "networks"}, "policy.freshness")
    nets = value.get("networks", {})
    if not isinstance(nets, dict):
        raise ManifestError("policy.freshness.networks must be an object of network name -> object")
    for name, sub in nets.items():
        if not isinstance(name, str) or not 1 <= len(name) <= 100 or model.blank(name):
            raise ManifestError("policy.freshness.networks names must be non-blank strings of at most 100 characters")
        if not isinstance(sub, dict):
            raise ManifestError(f"policy.freshness.networks.{name} must be an object")
        _days(sub, f"policy.freshness.networks.{name}")


def periods(policy: Mapping[str, Any] | None, networks: Iterable[str] = ()) -> tuple[int, int]:
    """(confirm_days, verify_days) for an entry in ``networks``: the strictest (smallest) of the
    federation's values and those of every listed network it is in."""
    p = policy or {}
    confirm = p.get("confirm_days", DEFAULT_CONFIRM_DAYS)
    verify = p.get("verify_days", DEFAULT_VERIFY_DAYS)
    nets = p.get("networks") or {}
    for n in networks:
        if isinstance(n, str) and n in nets:
            confirm = min(confirm, nets[n].get("confirm_days", confirm))
            verify = min(verify, nets[n].get("verify_days", verify))
    return confirm, verify


# --- derivations --------------------------------------------------------------------------------------------
def hlc_ms(hlc: str | None) -> int | None:
    return int(hlc[:13]) if hlc else None


def freshness(
    entry: Mapping[str, Any],
    *,
    modified_hlc: str,
    latest: Mapping[str, Mapping[str, Any]],
    verified: Mapping[str, str],
    confirmed_hlc: str | None,
) -> dict[str, Any]:
    """What an entry shows (§15.4).

    ``latest``: channel id -> ``{"result", "hlc", "origin", …}`` (its ``check`` record);
    ``verified``: channel id -> hlc of its ``verified`` record; ``confirmed_hlc``: the ``confirm``
    record's hlc.  Only the entry's *current* channels count: a changed address was never verified.
    Times are hlcs; ``last_verified`` is the greatest over the channels.
    """
    chans = []
    for label, cid in channels(entry):
        last = latest.get(cid)
        chans.append(
            {
                "label": label,
                "channel": cid,
                "last_result": last.get("result") if last else None,
                "last_result_hlc": last.get("hlc") if last else None,
                "last_verified": verified.get(cid),
            }
        )
    lv = max((c["last_verified"] for c in chans if c["last_verified"]), default=None)
    return {"last_modified": modified_hlc, "last_verified": lv, "last_confirmed": confirmed_hlc, "channels": chans}


def overdue(
    entry: Mapping[str, Any], fresh: Mapping[str, Any], policy: Mapping[str, Any] | None, *, now_ms: int
) -> dict[str, Any] | None:
    """Why an entry is overdue at ``now_ms`` under ``policy`` (manifest ``policy.freshness``), or None.

    Confirmation: overdue when ``now`` is more than ``confirm_days`` after the later of
    ``last_confirmed`` and ``last_modified``.  Verification: overdue when ``now`` is more than
    ``verify_days`` after ``last_verified`` — or, never verified, after ``last_modified`` (a new or
    changed entry gets one period to be checked).
    """
    confirm_days, verify_days = periods(policy, entry.get("networks") or [])
    modified = hlc_ms(fresh["last_modified"]) or 0
    confirmed = max(modified, hlc_ms(fresh.get("last_confirmed")) or 0)
    verified = hlc_ms(fresh.get("last_verified"))
    reasons = []
    if now_ms - confirmed > confirm_days * DAY_MS:
        reasons.append("confirm")
    if now_ms - (verified if verified is not None else modified) > verify_days * DAY_MS:
        reasons.append("verify")
    if not reasons:
        return None
    return {
        "reasons": reasons,
        "confirm_days": confirm_days,
        "verify_days": verify_days,
        "confirm_due_ms": confirmed + confirm_days * DAY_MS,
        "verify_due_ms": (verified if verified is not None else modified) + verify_days * DAY_MS,
    }
