"""Reading the communication-check and freshness registers of a store (PROTOCOL.md §15)."""

from __future__ import annotations

import json
from typing import Any

from pocsync.store.reads import Reads


class CheckReads(Reads):
    # --- communication checks and freshness (issue 15, PROTOCOL.md §15) -- BEGIN i15a block ------------------
    # Read-only queries over the `records` registers the check and confirm ops derive (namespaces check,
    # verified, campaign, confirm).  No clock here: callers pass `now_ms` (the node's clock).
    def check_records(self, namespace: str, prefix: str = "") -> list[dict[str, Any]]:
        """Every register of ``namespace`` whose key starts with ``prefix`` (the op, its origin and hlc)."""
        sql = "SELECT * FROM records WHERE ns=?"
        args: list[Any] = [namespace]
        if prefix:
            sql += " AND key >= ? AND key < ?"
            args += [prefix, prefix + "\U0010ffff"]
        return [
            {
                "key": r["key"],
                "origin": r["origin"],
                "hlc": r["hlc"],
                "author": r["author"],
                "op": json.loads(r["entry"]),
            }
            for r in self.conn.execute(sql + " ORDER BY key", args)
        ]

    def freshness_records(self, key: str | None = None) -> dict[str, dict[str, Any]]:
        """Per entry key: ``{"latest": {channel: {result, hlc, origin, campaign}}, "verified": {channel: hlc},
        "confirmed": hlc | None}`` — from the check, verified and confirm registers (all keys, or one)."""
        out: dict[str, dict[str, Any]] = {}

        def slot(k: str) -> dict[str, Any]:
            return out.setdefault(k, {"latest": {}, "verified": {}, "confirmed": None})

        prefix = f"{key}/" if key else ""
        for r in self.check_records("check", prefix):
            k, ch = r["key"].rsplit("/", 1)
            slot(k)["latest"][ch] = {
                "result": r["op"].get("result"),
                "hlc": r["hlc"],
                "origin": r["origin"],
                "campaign": r["op"].get("campaign"),
            }
        for r in self.check_records("verified", prefix):
            k, ch = r["key"].rsplit("/", 1)
            slot(k)["verified"][ch] = r["hlc"]
        for r in self.check_records("confirm", key or ""):
            if key is None or r["key"] == key:
                slot(r["key"])["confirmed"] = r["hlc"]
        return out

    def freshness(self, *, now_ms_: int | None = None, key: str | None = None) -> list[dict[str, Any]]:
        """Every entry of the view (or one) with its freshness (core.checks.freshness) and, when
        ``now_ms_`` is given, ``overdue`` under the manifest's policy.freshness (None: not overdue)."""
        from pocsync.core import checks

        m = self.manifest()
        policy = m.policy.get("freshness") if m is not None else None
        on = m is not None and "freshness" in m.features
        recs = self.freshness_records(key)
        rows = [
            r
            for r in (
                [self._view_row(x) for x in self.conn.execute("SELECT * FROM view WHERE key=?", (key,))]
                if key
                else self.entries()
            )
        ]
        out = []
        for r in rows:
            rec = recs.get(r["key"], {"latest": {}, "verified": {}, "confirmed": None})
            f = checks.freshness(
                r["entry"],
                modified_hlc=r["hlc"],
                latest=rec["latest"],
                verified=rec["verified"],
                confirmed_hlc=rec["confirmed"],
            )
            f["overdue"] = checks.overdue(r["entry"], f, policy, now_ms=now_ms_) if now_ms_ is not None and on else None
            out.append({"key": r["key"], "origin": r["origin"], "entry": r["entry"], **f})
        return out

    def overdue_counts(self, *, now_ms_: int) -> dict[str, int]:
        """Overdue entries per winning origin (for the dashboard and /metrics; no contact data)."""
        counts: dict[str, int] = {}
        for f in self.freshness(now_ms_=now_ms_):
            if f["overdue"]:
                counts[f["origin"]] = counts.get(f["origin"], 0) + 1
        return dict(sorted(counts.items()))

    def campaign_counts(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """Per campaign (from the `campaign` registers: the latest result of each channel within it):
        ``{"origins": [...], "results": {result: n}, "by_origin": {origin: {result: n}},
        "by_state": {State: {result: n}}, "channels": n, "response_seconds": [sorted ints], "last_hlc"}``.  A channel
        whose latest result is acknowledged, no_response or bounced was also sent.  ``limit``: only the campaigns
        with the latest results (any node may sign any number of campaign names)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.check_records("campaign"):
            campaign, state = r["key"].split("/", 2)[:2]
            c = out.setdefault(
                campaign,
                {
                    "origins": set(),
                    "results": {},
                    "by_origin": {},
                    "by_state": {},
                    "channels": 0,
                    "response_seconds": [],
                    "last_hlc": "",
                },
            )
            c["last_hlc"] = max(c["last_hlc"], r["hlc"])
            result = r["op"].get("result")
            c["origins"].add(r["origin"])
            c["channels"] += 1
            for bucket in (
                c["results"],
                c["by_origin"].setdefault(r["origin"], {}),
                c["by_state"].setdefault(state, {}),
            ):
                bucket[result] = bucket.get(result, 0) + 1
            if result == "acknowledged" and isinstance(r["op"].get("response_seconds"), int):
                c["response_seconds"].append(r["op"]["response_seconds"])
        for c in out.values():
            c["origins"] = sorted(c["origins"])
            c["response_seconds"].sort()
        if limit is not None and len(out) > limit:
            keep = sorted(out, key=lambda k: (out[k]["last_hlc"], k), reverse=True)[:limit]
            out = {k: out[k] for k in keep}
        return dict(sorted(out.items()))

    # --- END i15a block ---------------------------------------------------------------------------------------
