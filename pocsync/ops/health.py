"""Sync health of a node, for UN operators (issue 5; docs/ARCHITECTURE.md).  Never any entry content.

``collect`` assembles, from the store and the runtime: per origin the head this node holds, the
highest seq the origin itself announced, the lag, the hlc and age of the last change-set and the
last contact; per peer MQTT/pull state; manifest version and expiry; this node's digest next to
the digests other nodes announced; quarantine, refusal and equivocation counts by reason; clock
warnings.  It only reads counts, ids, seqs and times — the contract the no-content tests check.

Convergence is judged on each node's last announced head vector (ADR 11): ``same`` (same heads and
digest), ``behind``/``ahead`` (lag, with the announcement's age) or ``diverged`` (same heads, another
digest).  Node status comes from the runtime's last contact over any transport.
"""

from __future__ import annotations

import time
from typing import Any

from pocsync import __version__
from pocsync.core.hlc import HLC
from pocsync.core.opkinds import FEATURES
from pocsync.store import Store, queries

CLOCK_WARN_MS = 60_000


def _store_part(store: Store) -> dict[str, Any]:
    c = store.conn
    return {
        "last": queries.last_changesets(c),
        "digest": store.digest(),
        "entries": queries.entry_count(c),
        "quarantined": queries.counts_by_reason(c, "quarantine"),
        "refused": queries.counts_by_reason(c, "refused"),
        "parked": queries.counts_by_reason(c, "parked"),
        "equivocations": queries.equivocations(c),
        "manifest": store.manifest(),
        "signing_blocked": store.signing_blocked(),
        "held": store.held_health(),
    }


def _compare(ours: dict[str, tuple[int, str]], our_digest: str, hv: Any, members: Any = None) -> dict[str, Any]:
    """How an announced head vector relates to this node: same, behind, ahead, or diverged.

    ``behind``/``ahead`` are lag (the announcement lacks change-sets this node holds, or holds more):
    they resolve by syncing.  ``diverged`` is real: the same change-sets and another view digest.
    Heads of origins that are not ``members`` (no valid change-set of theirs can exist) are ignored."""
    theirs = {o: h for o, h in hv.heads.items() if members is None or o in members}
    behind = sum(max(0, seq - theirs.get(o, (0, ""))[0]) for o, (seq, _) in ours.items())
    ahead = sum(max(0, seq - ours.get(o, (0, ""))[0]) for o, (seq, _) in theirs.items())
    forks = sorted(o for o, (seq, i) in theirs.items() if o in ours and ours[o][0] == seq and ours[o][1] != i)
    if hv.digest == our_digest and not forks and not behind and not ahead:
        state = "same"
    elif forks or (not behind and not ahead):
        state = "diverged"
    elif ahead:
        state = "ahead"
    else:
        state = "behind"
    return {"state": state, "behind": behind, "ahead": ahead, "forks": forks}


def _manifest_part(rt: Any, m: Any, now: float) -> dict[str, Any]:
    """The manifest in force: version, expiry (and its warning), features, and a newer one this node refused."""
    return {
        "version": m.version,
        "expires": m.expires,
        "expires_in_s": int(m.expires - now),
        "warning": _expiry_warning(m.expires - now),
        "features": sorted(m.features),
        "refused": rt.manifest_refused
        if rt.manifest_refused is not None and rt.manifest_refused["version"] > m.version
        else None,
    }


def _peers_part(rt: Any) -> dict[str, Any]:
    """Per peer URL: the node behind it and how pulling from it went."""
    return {
        u: {
            "node": p.node,
            "last_pull_ok": p.last_pull_ok,
            "last_error": p.last_error,
            "last_error_at": p.last_error_at,
            "pulls": p.pulls,
        }
        for u, p in sorted(rt.peers.items())
    }


async def collect(rt: Any) -> dict[str, Any]:
    """The health document (JSON-ready)."""
    now = time.time()
    s = await rt.worker.run(_store_part)
    m = s["manifest"]
    ours = {o: (v[0], v[3]) for o, v in s["last"].items()}
    announcements = _announcements(rt, ours, s["digest"], m, now)
    origins = {
        node_id: _origin(rt, node_id, s["last"].get(node_id, (0, None, None, None)), announcements, m, now)
        for node_id in sorted(set(m.nodes) | set(s["last"]))
    }
    announced_digests = {n: a["digest"] for n, a in announcements.items()}
    nodes_behind = {n: a["behind"] for n, a in announcements.items()}
    converged = all(a["state"] == "same" for a in announcements.values())
    clock = _clock_warnings(rt, now)
    return {
        "node": rt.me,
        "time": round(now, 3),
        "uptime_s": round(now - rt.started_at, 1),
        "manifest": _manifest_part(rt, m, now),
        "software": {"version": __version__, "protocol": "pocsync/v1", "features": sorted(FEATURES)},
        "digest": s["digest"],
        "entries": s["entries"],
        "announced_digests": announced_digests,
        "announcements": announcements,
        "converged": converged,
        "nodes_behind": nodes_behind,
        "origins": origins,
        "peers": _peers_part(rt),
        "mqtt": {
            "configured": bool(rt.cfg.mqtt.url),
            "connected": rt.mqtt_connected,
            "reconnects": rt.counters.get("mqtt_reconnects", 0),
        },
        "quarantined": s["quarantined"],
        "refused": s["refused"],
        "parked": s["parked"],
        "equivocations": s["equivocations"],
        "signing_blocked": s["signing_blocked"],
        "clock_warnings": clock,
        "sources": {n: dict(v) for n, v in sorted(getattr(rt, "sources", {}).items())},  # counts, never content
        "held": s["held"],  # held contact changes: how many pending, which objected (keys, never contact data)
    }


def _announcements(rt: Any, ours: dict[str, tuple[int, str]], our_digest: str, m: Any, now: float) -> dict[str, Any]:
    """Per other member node, its last announced head vector compared with this node's heads."""
    announcements: dict[str, Any] = {}
    for n, c in sorted(rt.contacts.items()):
        if c.hv is None or n == rt.me or (n in m.nodes and m.nodes[n].removed):
            continue
        announcements[n] = {
            "digest": c.hv.digest,
            "hlc": c.hv.hlc,
            "manifest": c.hv.manifest,
            "via": c.hv_via,
            "age_s": round(now - c.hv_at, 1),
            **_compare(ours, our_digest, c.hv, m.nodes),
        }
    return announcements


def _origin(
    rt: Any, node_id: str, last: tuple[Any, ...], announcements: dict[str, Any], m: Any, now: float
) -> dict[str, Any]:
    """One origin's part of the health document: its head here, announced head, lag and contact state."""
    seq, hlc, _received_at, _ = last
    hv = rt.announced_heads.get(node_id)
    announced = hv.heads.get(node_id, (0, ""))[0] if hv is not None else None
    if node_id == rt.me:
        announced = seq
    ns: dict[str, Any] = (
        {"state": "self", "since": None, "last_seen": None, "last_error": None, "via": None}
        if node_id == rt.me
        else rt.node_state(node_id, now)
    )
    return {
        "head_seq": seq,
        "announced_seq": announced,
        "lag": None if announced is None else max(0, announced - seq),
        "last_hlc": hlc,
        "last_changeset_age_s": None if hlc is None else round(now - HLC.parse(hlc).ms / 1000, 1),
        "last_contact_age_s": None if ns["last_seen"] is None else round(now - ns["last_seen"], 1),
        "status": ns["state"],
        "offline_since": ns["since"] if ns["state"] == "offline" else None,
        "last_error": ns["last_error"],
        "contact_via": ns["via"],
        "behind": announcements[node_id]["behind"] if node_id in announcements else None,
        "removed": m.nodes[node_id].removed if node_id in m.nodes else None,
        "role": m.nodes[node_id].role if node_id in m.nodes else None,
    }


def _clock_warnings(rt: Any, now: float) -> list[dict[str, Any]]:
    """Nodes whose last announced hlc runs more than CLOCK_WARN_MS ahead of when they were last heard."""
    clock = []
    for n, hv in sorted(rt.announced_heads.items()):
        skew = HLC.parse(hv.hlc).ms - rt.last_contact.get(n, now) * 1000
        if skew > CLOCK_WARN_MS:
            clock.append({"node": n, "ahead_ms": int(skew)})
    return clock


def _expiry_warning(seconds: float) -> str | None:
    for days in (1, 7, 30):
        if seconds <= days * 86_400:
            return "expired" if seconds <= 0 else f"expires within {days} day{'s' if days > 1 else ''}"
    return None


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def problems(h: dict[str, Any]) -> list[str]:
    """Why a node is unhealthy (for `pocsync status` exit codes and the dashboard)."""
    out = []
    for n, a in h.get("announcements", {}).items():
        st = h["origins"].get(n, {})
        where = (
            f"{n} ({st.get('status', '?')}"
            + (f" since {_clock(st['offline_since'])}" if st.get("offline_since") else "")
            + f", announced {a['age_s']:.0f} s ago)"
        )
        if a["state"] == "diverged":
            out.append(
                f"DIVERGED: {where} holds the same change-sets as this node but announces another view"
                + (f" (fork at {', '.join(a['forks'])})" if a["forks"] else "")
            )
        elif a["state"] == "behind":
            out.append(f"not converged: {where} lacks {a['behind']} change-set(s) this node holds")
        elif a["state"] == "ahead":
            out.append(f"not converged: this node lacks {a['ahead']} change-set(s) that {where} holds")
    if h["equivocations"]:
        out.append(f"{len(h['equivocations'])} equivocation(s)")
    lagging = [o for o, v in h["origins"].items() if v["lag"]]
    if lagging:
        out.append("lagging behind " + ", ".join(lagging))
    if h["signing_blocked"]:
        out.append("signing blocked: " + h["signing_blocked"])
    failing = [n for n, v in h.get("sources", {}).items() if v.get("result") == "error"]
    if failing:
        out.append("source(s) failing: " + ", ".join(failing))
    refused = h["manifest"].get("refused")
    if refused:
        out.append(
            f"manifest v{refused['version']} refused: it enables feature(s) "
            f"{', '.join(refused['missing_features'])} that this software lacks (upgrade pocsync; change-sets"
            " signed under it wait, parked)"
        )
    if h["manifest"]["warning"]:
        out.append("manifest " + h["manifest"]["warning"])
    for o in (h.get("held") or {}).get("objected", []):
        out.append(
            f"OBJECTION: the held contact change of {o['key']} by {o['origin']} was objected to and is "
            "cancelled (a redirection attempt?)"
        )
    return out
