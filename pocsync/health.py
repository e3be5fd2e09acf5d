"""Sync health of a node, for UN operators (DESIGN §1, issue 5).  Never any entry content.

``collect`` assembles, from the store and the runtime: per origin the head this node holds, the
highest seq the origin itself announced, the lag, the hlc and age of the last change-set and the
last contact; per peer MQTT/pull state; manifest version and expiry; this node's digest next to
the digests other nodes announced; quarantine, refusal and equivocation counts by reason; clock
warnings.  It only reads counts, ids, seqs and times — the contract the no-content tests check.
"""

from __future__ import annotations

import time
from typing import Any

from pocsync import __version__
from pocsync.core.hlc import HLC
from pocsync.core.opkinds import FEATURES
from pocsync.store import Store

CLOCK_WARN_MS = 60_000


def _store_part(store: Store) -> dict[str, Any]:
    c = store.conn
    last = {r["origin"]: (r["seq"], r["hlc"], r["received_at"]) for r in c.execute(
        "SELECT l.origin, l.seq, l.hlc, l.received_at FROM log l JOIN (SELECT origin, max(seq) m FROM log"
        " GROUP BY origin) h ON l.origin=h.origin AND l.seq=h.m")}
    by = lambda sql: {r[0]: r[1] for r in c.execute(sql)}  # noqa: E731
    m = store.manifest()
    return {
        "last": last,
        "digest": store.digest(),
        "entries": c.execute("SELECT count(*) FROM view").fetchone()[0],
        "quarantined": by("SELECT reason, count(*) FROM quarantine GROUP BY reason"),
        "refused": by("SELECT reason, count(*) FROM refused GROUP BY reason"),
        "parked": by("SELECT reason, count(*) FROM parked GROUP BY reason"),
        "equivocations": [{"origin": r[0], "seq": r[1]} for r in
                          c.execute("SELECT DISTINCT origin, seq FROM proofs ORDER BY origin, seq")],
        "manifest": m,
        "signing_blocked": store.signing_blocked(),
    }


async def collect(rt: Any) -> dict[str, Any]:
    """The health document (JSON-ready)."""
    now = time.time()
    s = await rt.worker.run(_store_part)
    m = s["manifest"]
    origins: dict[str, Any] = {}
    for node_id in sorted(set(m.nodes) | set(s["last"])):
        seq, hlc, received_at = s["last"].get(node_id, (0, None, None))
        hv = rt.announced_heads.get(node_id)
        announced = hv.heads.get(node_id, (0, ""))[0] if hv is not None else None
        if node_id == rt.me:
            announced = seq
        origins[node_id] = {
            "head_seq": seq,
            "announced_seq": announced,
            "lag": None if announced is None else max(0, announced - seq),
            "last_hlc": hlc,
            "last_changeset_age_s": None if hlc is None else round(now - HLC.parse(hlc).ms / 1000, 1),
            "last_contact_age_s": None if node_id not in rt.last_contact else round(now - rt.last_contact[node_id], 1),
            "status": "self" if node_id == rt.me else rt.online.get(node_id, "unknown"),
            "removed": m.nodes[node_id].removed if node_id in m.nodes else None,
            "role": m.nodes[node_id].role if node_id in m.nodes else None,
        }
    announced_digests = {n: hv.digest for n, hv in sorted(rt.announced_heads.items())}
    ours = {o: v[0] for o, v in s["last"].items()}
    nodes_behind = {n: sum(max(0, seq - hv.heads.get(o, (0, ""))[0]) for o, seq in ours.items())
                    for n, hv in sorted(rt.announced_heads.items())}
    converged = all(d == s["digest"] for d in announced_digests.values())
    clock = []
    for n, hv in sorted(rt.announced_heads.items()):
        skew = HLC.parse(hv.hlc).ms - rt.last_contact.get(n, now) * 1000
        if skew > CLOCK_WARN_MS:
            clock.append({"node": n, "ahead_ms": int(skew)})
    return {
        "node": rt.me,
        "time": round(now, 3),
        "uptime_s": round(now - rt.started_at, 1),
        "manifest": {"version": m.version, "expires": m.expires, "expires_in_s": int(m.expires - now),
                     "warning": _expiry_warning(m.expires - now), "features": sorted(m.features)},
        "software": {"version": __version__, "protocol": "pocsync/v1", "features": sorted(FEATURES)},
        "digest": s["digest"],
        "entries": s["entries"],
        "announced_digests": announced_digests,
        "converged": converged,
        "nodes_behind": nodes_behind,
        "origins": origins,
        "peers": {u: {"node": p.node, "last_pull_ok": p.last_pull_ok, "last_error": p.last_error,
                      "last_error_at": p.last_error_at, "pulls": p.pulls} for u, p in sorted(rt.peers.items())},
        "mqtt": {"configured": bool(rt.cfg.mqtt.url), "connected": rt.mqtt_connected,
                 "reconnects": rt.counters.get("mqtt_reconnects", 0)},
        "quarantined": s["quarantined"],
        "refused": s["refused"],
        "parked": s["parked"],
        "equivocations": s["equivocations"],
        "signing_blocked": s["signing_blocked"],
        "clock_warnings": clock,
    }


def _expiry_warning(seconds: float) -> str | None:
    for days in (1, 7, 30):
        if seconds <= days * 86_400:
            return "expired" if seconds <= 0 else f"expires within {days} day{'s' if days > 1 else ''}"
    return None


def problems(h: dict[str, Any]) -> list[str]:
    """Why a node is unhealthy (for `pocsync status` exit codes and the dashboard)."""
    out = []
    if not h["converged"]:
        out.append("not converged: announced digests differ from this node's")
    if h["equivocations"]:
        out.append(f"{len(h['equivocations'])} equivocation(s)")
    lagging = [o for o, v in h["origins"].items() if v["lag"]]
    if lagging:
        out.append("lagging behind " + ", ".join(lagging))
    if h["signing_blocked"]:
        out.append("signing blocked: " + h["signing_blocked"])
    if h["manifest"]["warning"]:
        out.append("manifest " + h["manifest"]["warning"])
    return out
