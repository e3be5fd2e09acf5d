"""Reports on communication checks, with no contact data: the status of campaigns, who checked what,
PoC reports of wrong entries (rate-limited) and overdue counts.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from pocsync.directory.checkrecords import STATUSES, latest_checks
from pocsync.errors import PocsyncError
from pocsync.store import queries


def _quantile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1])


def campaign_status(store: Any, campaign: str | None = None) -> list[dict[str, Any]]:
    """Per campaign: counts by status, by origin (of the entry's winning version) and by State, response-time
    median and 90th percentile, and who checked the skipped channels.  Keys, labels and node ids only."""
    origin_of = queries.view_origins(store.conn)
    out = []
    for c in queries.campaigns_newest_first(store.conn, campaign):
        counts = {s: 0 for s in STATUSES}
        by_origin: dict[str, dict[str, int]] = {}
        by_state: dict[str, dict[str, int]] = {}
        skipped_by: dict[str, int] = {}
        times: list[int] = []
        codes: dict[str, int] = {}
        for t in queries.targets_of(store.conn, c["id"]):
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
        out.append(
            {
                "campaign": c["id"],
                "created_ms": c["created_ms"],
                "deadline_seconds": c["deadline_seconds"],
                "selector": json.loads(c["selector"]),
                "started_by": c["started_by"],
                "status": c["status"],
                "channels": sum(counts.values()),
                "mailed": mailed,
                "counts": counts,
                "awaiting": counts["sent"],
                "by_origin": dict(sorted(by_origin.items())),
                "by_state": dict(sorted(by_state.items())),
                "skipped_by": dict(sorted(skipped_by.items())),
                "bounce_codes": dict(sorted(codes.items())),
                "response_seconds": {
                    "median": _quantile(sorted(times), 0.5),
                    "p90": _quantile(sorted(times), 0.9),
                    "n": len(times),
                },
            }
        )
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


def add_report(
    store: Any, *, key: str, origin: str, reporter: str, received_from: str, text: str, now_ms: int, local: bool = True
) -> str:
    """Keep a report (``local``: made by a PoC signed in here; else forwarded by ``received_from``).
    ReportRefused when that PoC, or that peer, reached its reports for the last 24 hours."""
    with store.transaction():
        since = now_ms - 86_400_000
        if local:
            n = queries.reports_since(store.conn, received_from=received_from, since_ms=since, reporter=reporter)
            cap = REPORTS_PER_REPORTER_PER_DAY
        else:
            n = queries.reports_since(store.conn, received_from=received_from, since_ms=since)
            cap = REPORTS_PER_PEER_PER_DAY
        if n >= cap:
            raise ReportRefused(
                f"at most {cap} reports a day from {'one PoC' if local else 'one node'}; "
                "the secretariat has the earlier ones"
            )
        queries.add_report(
            store.conn, at_ms=now_ms, key=key, origin=origin, reporter=reporter, received_from=received_from, text=text
        )
        store.audit(
            actor=reporter, action="check.report", target=key, result="ok", detail=f"for {origin}, via {received_from}"
        )
    return origin


def mark_report(store: Any, n: int, state: int) -> None:
    """1: mailed to this node's contact_email; 2: forwarded to the origin node."""
    with store.transaction():
        queries.mark_report(store.conn, n, state)


def reports_by_origin(store: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in queries.report_counts(store.conn):
        d = out.setdefault(r["origin"], {"received": 0, "mailed": 0, "forwarded": 0, "waiting": 0})
        d["received"] += r["n"]
        d[{0: "waiting", 1: "mailed", 2: "forwarded"}.get(r["mailed"], "waiting")] += r["n"]
    return dict(sorted(out.items()))


def overdue_rows(store: Any, now_ms: int) -> list[dict[str, Any]]:
    """Overdue entries by the federation's freshness policy (PROTOCOL.md §15): key, origin, reasons."""
    return [
        {"key": f["key"], "origin": f["origin"], "reasons": list(f["overdue"].get("reasons") or ["overdue"])}
        for f in store.freshness(now_ms_=now_ms)
        if f["overdue"]
    ]


def overdue_by_origin(store: Any, now_ms: int) -> dict[str, int]:
    counts: dict[str, int] = store.overdue_counts(now_ms_=now_ms)
    return counts
