"""Operations (issue 5): health, metrics, `pocsync status`, dashboard — and never any entry content."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pocsync import __version__
from pocsync.core.opkinds import FEATURES, OPT_IN_FEATURES
from tests.support.broker import Mosquitto
from tests.support.browser import browser, screenshot
from tests.support.cli import run, sh
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow
SECRETS = [
    "Unique Organisation Zeta (fictional)",
    "Cyber Liaison Officer Omega",
    "Q. Example-Person",
    "omega-liaison@zeta.example.org",
    "+4930987654321",
    "notes-marker-9c1e",
]


def get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_health_metrics_status_and_dashboard(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    fed = Federation(tmp_path, ("un", "eu", "osce"), mqtt=broker.url, pull_interval=5)
    for n in ("un", "eu", "osce"):  # JSON-lines logs, to be read for leaks below
        toml = fed[n].data / "sync.toml"
        toml.write_text(toml.read_text() + '\n[log]\nformat = "json"\n')
    try:
        fed.start()
        fed["eu"].put(
            entry(
                "DEU/diplomatic",
                organisation=SECRETS[0],
                position=SECRETS[1],
                person=SECRETS[2],
                emails=[SECRETS[3]],
                phones=[SECRETS[4]],
                notes=SECRETS[5],
            )
        )
        fed.wait_converged()
        op = run("token", "issue", "--data", fed["un"].data, "--operator", "watch").output.strip()
        token_file = tmp_path / "op.token"
        token_file.write_text(op)
        wait_for(lambda: json.loads(get(fed["un"].url + "/v1/health", op)[1])["converged"], 30, "un to see convergence")
        assert sh("status", "--url", fed["un"].url, "--token", token_file).returncode == 0

        fed["osce"].stop()  # osce is down while eu edits: un reports osce 3 behind and no convergence
        for i in range(3):
            fed["eu"].put(entry("FRA/technical", notes=f"while osce is down {i}"))
        wait_for(lambda: fed["un"].digest() == fed["eu"].digest(), 30, "un to follow eu")
        status, body = get(fed["un"].url + "/v1/health", op)
        h = json.loads(body)
        assert status == 200 and h["nodes_behind"]["osce"] == 3 and not h["converged"]
        assert h["origins"]["osce"]["status"] == "offline"
        proc = sh("status", "--url", fed["un"].url, "--token", token_file, check=False)
        assert proc.returncode == 1 and b"NOT converged" in proc.stdout
        status, text = get(fed["un"].url + "/metrics", op)
        families = {f.name: f for f in text_string_to_metric_families(text.decode())}
        behind = {s.labels["node"]: s.value for s in families["pocsync_node_behind_changesets"].samples}
        assert status == 200 and behind["osce"] == 3
        assert {
            "pocsync_origin_lag_changesets",
            "pocsync_changesets",
            "pocsync_equivocations",
            "pocsync_peer_up",
            "pocsync_pull_duration_seconds",
            "pocsync_mqtt_reconnects",
            "pocsync_api_requests",
            "pocsync_token_rejections",
            "pocsync_manifest_expiry_seconds",
        } <= set(families)

        fed["osce"].start()
        fed.wait_converged()
        wait_for(lambda: json.loads(get(fed["un"].url + "/v1/health", op)[1])["converged"], 30, "convergence again")
        h = json.loads(get(fed["osce"].url + "/v1/health", op)[1])
        assert all(v["lag"] == 0 for v in h["origins"].values() if v["lag"] is not None)
        assert sh("status", "--url", fed["un"].url, "--token", token_file).returncode == 0

        # the dashboard, in Chromium: renders the federation's nodes; a screenshot is kept
        with browser() as b:
            page = b.new_page()
            page.goto(fed["un"].url + "/dashboard")
            assert "EQUIVOCATION" not in page.content()
            page.fill("#token", op)
            page.click("#signin-btn")
            page.wait_for_selector(".node-card[data-node='osce']", timeout=15000)
            cards = page.eval_on_selector_all(".node-card", "els => els.map(e => e.dataset.node)")
            assert sorted(cards) == ["eu", "osce", "un"]
            screenshot(page, "dashboard")
            dashboard_text = page.inner_text("body") + page.content()
            # software version and features (issue 10): the Federation's manifest enables every feature but the
            # opt-in ones (held-changes), as `manifest create` does
            assert (
                f"Software: pocsync {__version__}" in dashboard_text
                and ("features enabled: " + ", ".join(sorted(set(FEATURES) - OPT_IN_FEATURES))) in dashboard_text
            )
        metrics_text = get(fed["un"].url + "/metrics", op)[1].decode()
        health_text = get(fed["un"].url + "/v1/health", op)[1].decode()
        status_text = sh("status", "--url", fed["un"].url, "--token", token_file, "--json").stdout.decode()
        assert json.loads(health_text)["software"] == {
            "version": __version__,
            "protocol": "pocsync/v1",
            "features": sorted(FEATURES),
        }
        # `manifest create` enables every feature but the opt-in ones (held-changes, ADR 28)
        assert json.loads(health_text)["manifest"]["features"] == sorted(set(FEATURES) - OPT_IN_FEATURES)
        assert ("manifest enables: " + ", ".join(sorted(set(FEATURES) - OPT_IN_FEATURES))) in sh(
            "status", "--url", fed["un"].url, "--token", token_file
        ).stdout.decode()
        # an operator token cannot read entries
        assert get(fed["un"].url + "/v1/entries", op)[0] == 403
    finally:
        fed.stop()
        broker.stop()
    logs = "".join(fed[n].log.read_text() for n in ("un", "eu", "osce"))
    assert all(json.loads(line) for line in fed["un"].log.read_text().splitlines() if line.startswith("{"))
    for secret in SECRETS:
        for name, text in (
            ("health", health_text),
            ("metrics", metrics_text),
            ("status", status_text),
            ("logs", logs),
            ("dashboard", dashboard_text),
        ):
            assert secret not in text, f"{secret!r} appears in the {name}"
