"""Prometheus exposition of a node's sync health (prometheus-client; conventional names).

Built per scrape from the health document and the runtime counters, in a registry of its own, so
nothing global leaks between nodes or tests.  No entry content: labels are node ids, reasons,
routes and status codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

PULL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PullHistogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(PULL_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.sum += v
        for i, b in enumerate(PULL_BUCKETS):
            if v <= b:
                self.counts[i] += 1
        self.counts[-1] += 1


def _split(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in counters.items() if k.startswith(prefix)}


class _Snapshot:
    def __init__(self, health: dict[str, Any], counters: dict[str, int], hist: PullHistogram) -> None:
        self.h, self.c, self.hist = health, counters, hist

    def collect(self) -> Iterable[Metric]:
        yield from self._origins()
        yield from self._changesets()
        yield from self._transport()
        yield from self._requests()
        yield from self._node()

    def _origins(self) -> Iterable[Metric]:
        """Per origin and per node: heads, lag, age, online, behind, announcement age."""
        h = self.h
        lag = GaugeMetricFamily(
            "pocsync_origin_lag_changesets", "Change-sets an origin announced that this node lacks", labels=["origin"]
        )
        head = GaugeMetricFamily(
            "pocsync_origin_head_seq", "Highest seq of the origin in this node's log", labels=["origin"]
        )
        age = GaugeMetricFamily(
            "pocsync_origin_last_changeset_age_seconds", "Age of the origin's newest change-set", labels=["origin"]
        )
        online = GaugeMetricFamily(
            "pocsync_node_online",
            "1 when the node was heard from recently over any transport (0: offline or never seen)",
            labels=["node"],
        )
        for o, v in h["origins"].items():
            head.add_metric([o], v["head_seq"])
            if v["lag"] is not None:
                lag.add_metric([o], v["lag"])
            if v["last_changeset_age_s"] is not None:
                age.add_metric([o], v["last_changeset_age_s"])
            if v["status"] != "self":
                online.add_metric([o], 1 if v["status"] == "online" else 0)
        behind = GaugeMetricFamily(
            "pocsync_node_behind_changesets",
            "Change-sets this node holds that the node's last head vector lacks",
            labels=["node"],
        )
        for n, v in h["nodes_behind"].items():
            behind.add_metric([n], v)
        ann = GaugeMetricFamily(
            "pocsync_node_announcement_age_seconds",
            "Age of the last head vector the node announced to this node",
            labels=["node"],
        )
        for n, a in h.get("announcements", {}).items():
            ann.add_metric([n], a["age_s"])
        yield from (lag, head, age, online, behind, ann)

    def _changesets(self) -> Iterable[Metric]:
        """Change-sets received by result, equivocations, held changes, quarantine/refusal/parking by reason."""
        h, c = self.h, self.c
        results = CounterMetricFamily(
            "pocsync_changesets", "Change-sets received, by result and reason", labels=["result", "reason"]
        )
        for k, v in c.items():
            if k.startswith("changesets_") and k != "changesets_served":
                result, _, reason = k[len("changesets_") :].partition(":")
                if reason or result in ("accepted", "duplicate", "equivocation"):
                    results.add_metric([result, reason], v)
        yield results
        yield CounterMetricFamily("pocsync_equivocations", "Equivocations detected", value=c.get("equivocations", 0))
        eq = GaugeMetricFamily("pocsync_equivocation_proofs", "Equivocation proofs held")
        eq.add_metric([], len(h["equivocations"]))
        yield eq
        held = h.get("held") or {}  # held contact changes (PROTOCOL.md §16): counts, never contact data
        hc = GaugeMetricFamily(
            "pocsync_held_changes", "Held contact changes by status (pending; objected: an alarm)", labels=["status"]
        )
        hc.add_metric(["pending"], held.get("pending", 0) or 0)
        hc.add_metric(["objected"], len(held.get("objected") or []))
        yield hc
        for name, doc, key in (
            ("pocsync_quarantined_changesets", "Quarantined change-sets by reason", "quarantined"),
            ("pocsync_refused_ops", "Refused ops by reason", "refused"),
            ("pocsync_parked_changesets", "Parked change-sets by reason", "parked"),
        ):
            g = GaugeMetricFamily(name, doc, labels=["reason"])
            for reason, n in h[key].items():
                g.add_metric([reason], n)
            yield g

    def _transport(self) -> Iterable[Metric]:
        """Peers up, pull durations, MQTT state."""
        h, c = self.h, self.c
        up = GaugeMetricFamily("pocsync_peer_up", "1 when the last pull from the peer succeeded", labels=["peer"])
        for url, p in h["peers"].items():
            up.add_metric([p["node"] or url], 1 if p["last_error"] is None and p["last_pull_ok"] else 0)
        yield up
        hist = HistogramMetricFamily("pocsync_pull_duration_seconds", "Duration of one pull round with a peer")
        buckets = [(str(b), n) for b, n in zip(PULL_BUCKETS, self.hist.counts)] + [("+Inf", self.hist.counts[-1])]
        hist.add_metric([], buckets, sum_value=self.hist.sum)
        yield hist
        yield CounterMetricFamily("pocsync_mqtt_reconnects", "MQTT reconnections", value=c.get("mqtt_reconnects", 0))
        mq = GaugeMetricFamily("pocsync_mqtt_connected", "1 while connected to the broker")
        mq.add_metric([], 1 if h["mqtt"]["connected"] else 0)
        yield mq

    def _requests(self) -> Iterable[Metric]:
        """API requests, token and peer-request rejections, sealed messages dropped."""
        c = self.c
        api = CounterMetricFamily(
            "pocsync_api_requests", "API requests by route and status", labels=["route", "status"]
        )
        for k, v in _split(c, "api:").items():
            route, _, status = k.rpartition(":")
            api.add_metric([route, status], v)
        yield api
        tok = CounterMetricFamily("pocsync_token_rejections", "Rejected tokens by reason", labels=["reason"])
        for reason, v in _split(c, "token_rejected:").items():
            tok.add_metric([reason], v)
        yield tok
        peer = CounterMetricFamily(
            "pocsync_peer_requests_rejected", "Refused peer requests by reason", labels=["reason"]
        )
        for reason, v in _split(c, "peer_requests_rejected:").items():
            peer.add_metric([reason], v)
        yield peer
        yield CounterMetricFamily(
            "pocsync_sealed_dropped", "Sealed messages that did not open", value=c.get("sealed_dropped", 0)
        )

    def _node(self) -> Iterable[Metric]:
        """Manifest expiry and version, convergence, entries."""
        h = self.h
        exp = GaugeMetricFamily("pocsync_manifest_expiry_seconds", "Seconds until the manifest expires")
        exp.add_metric([], h["manifest"]["expires_in_s"])
        yield exp
        ver = GaugeMetricFamily("pocsync_manifest_version", "Installed manifest version")
        ver.add_metric([], h["manifest"]["version"])
        yield ver
        conv = GaugeMetricFamily(
            "pocsync_converged", "1 when every node's last announcement holds the same heads and digest as this node"
        )
        conv.add_metric([], 1 if h["converged"] else 0)
        yield conv
        ent = GaugeMetricFamily("pocsync_entries", "Entries in the merged view")
        ent.add_metric([], h["entries"])
        yield ent


def render(health: dict[str, Any], counters: dict[str, int], hist: PullHistogram) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(health, dict(counters), hist))
    return generate_latest(registry)


# --- communication checks (issue 15): counts only, no contact data ------------------------------------
class _Checks:
    def __init__(self, view: dict[str, Any]) -> None:
        self.v = view

    def collect(self) -> Iterable[Metric]:
        yield from self._campaigns()
        yield from self._entries_and_mail()

    def _campaigns(self) -> Iterable[Metric]:
        """Per campaign: channels by status (overall, by origin, by State) and response-time quantiles."""
        v = self.v
        targets = GaugeMetricFamily(
            "pocsync_check_channels", "Channels of a check campaign by status", labels=["campaign", "status"]
        )
        by_origin = GaugeMetricFamily(
            "pocsync_check_channels_by_origin",
            "Channels of a check campaign by status and origin of the entry",
            labels=["campaign", "origin", "status"],
        )
        by_state = GaugeMetricFamily(
            "pocsync_check_channels_by_state",
            "Channels of a check campaign by status and State",
            labels=["campaign", "state", "status"],
        )
        resp = GaugeMetricFamily(
            "pocsync_check_response_seconds", "Response time of acknowledged checks", labels=["campaign", "quantile"]
        )
        for c in v["campaigns"]:
            for status, n in c["counts"].items():
                targets.add_metric([c["campaign"], status], n)
            for origin, counts in c["by_origin"].items():
                for status, n in counts.items():
                    if n:
                        by_origin.add_metric([c["campaign"], origin, status], n)
            for state, counts in c["by_state"].items():
                for status, n in counts.items():
                    if n:
                        by_state.add_metric([c["campaign"], state, status], n)
            for q, name in (("0.5", "median"), ("0.9", "p90")):
                if c["response_seconds"][name] is not None:
                    resp.add_metric([c["campaign"], q], c["response_seconds"][name])
        yield from (targets, by_origin, by_state, resp)

    def _entries_and_mail(self) -> Iterable[Metric]:
        """Overdue entries and PoC reports by origin, latest check results by node, check mail counters."""
        v = self.v
        overdue = GaugeMetricFamily(
            "pocsync_entries_overdue", "Entries overdue by the freshness policy, by origin", labels=["origin"]
        )
        for origin, n in v["overdue_by_origin"].items():
            overdue.add_metric([origin], n)
        yield overdue
        reports = GaugeMetricFamily(
            "pocsync_check_reports", "PoC reports of wrong entries received, by origin", labels=["origin"]
        )
        for origin, d in v["reports_by_origin"].items():
            reports.add_metric([origin], d["received"])
        yield reports
        checked = GaugeMetricFamily(
            "pocsync_checks_latest",
            "Channels whose latest check result was signed by the node",
            labels=["node", "result"],
        )
        for node, d in v["checked_by"].items():
            for result, n in d.items():
                checked.add_metric([node, result], n)
        yield checked
        mail = v["mail"]
        for name, key, doc in (
            ("pocsync_check_messages_sent", "messages_sent", "Check messages sent"),
            ("pocsync_check_messages_bounced", "bounced", "Check messages bounced at send time"),
            ("pocsync_check_reminders_sent", "reminders_sent", "Overdue reminders sent"),
        ):
            yield CounterMetricFamily(name, doc, value=mail[key])


def render_checks(view: dict[str, Any]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Checks(view))
    return generate_latest(registry)
