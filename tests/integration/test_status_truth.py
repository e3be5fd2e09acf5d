"""What operators see must be true (issue 9): status and the dashboard agree with the stores within
seconds of convergence over HTTP alone and over MQTT; a stopped node shows offline (since when, with
its last error) and how far behind it is; a node never started shows "never seen"."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.browser import browser, screenshot
from tests.support.cli import run, sh
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def health(url: str, token: str) -> dict:
    req = urllib.request.Request(url + "/v1/health", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def status_lag(fed: Federation, names: tuple[str, ...], watcher: str, token: str, timeout: float = 120) -> float:
    """Seconds from the stores holding the same view to ``watcher``'s health saying converged."""
    t_stores = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        same = len(set(fed.digests(*names).values())) == 1
        if same and t_stores is None:
            t_stores = time.monotonic()
        if not same:
            t_stores = None
        if same and health(fed[watcher].url, token)["converged"]:
            return time.monotonic() - t_stores
        time.sleep(0.05)
    raise AssertionError(f"health never agreed: {json.dumps(health(fed[watcher].url, token), indent=1)[:3000]}")


@pytest.mark.parametrize("transport", ["http", "mqtt"])
def test_status_agrees_with_the_stores_within_seconds_of_convergence(tmp_path: Path, transport: str) -> None:
    broker = Mosquitto(tmp_path / "broker").start() if transport == "mqtt" else None
    names = ("un", "eu", "osce")
    # no periodic pull (1 h): health can only learn of the others' new digests from their announcements
    fed = Federation(tmp_path, names, mqtt=broker.url if broker else "", pull_interval=3600)
    try:
        fed.start()
        op = run("token", "issue", "--data", fed["un"].data, "--operator", "watch").output.strip()
        (tmp_path / "op.token").write_text(op)
        lags = []
        for i, (node, key) in enumerate(
            [("eu", "DEU/technical"), ("osce", "UKR/technical"), ("eu", "FRA/diplomatic"), ("un", "BRA/technical")]
        ):
            fed[node].put(entry(key, notes=f"edit {i}"))
            lags.append(status_lag(fed, names, "un", op))
            h = health(fed["un"].url, op)
            assert h["converged"] and set(h["announcements"]) == {"eu", "osce"}
            assert all(a["state"] == "same" and a["age_s"] >= 0 for a in h["announcements"].values())
            assert {n: v["status"] for n, v in h["origins"].items()} == {"un": "self", "eu": "online", "osce": "online"}
            proc = sh("status", "--url", fed["un"].url, "--token", tmp_path / "op.token", check=False)
            assert proc.returncode == 0 and b"NOT converged" not in proc.stdout, proc.stdout + proc.stderr
        # figures only (the 2 s target is measured by tests/benchmarks/bench_sync.py)
        print(f"{transport}: health said converged {', '.join(f'{x:.2f}' for x in lags)} s after the stores agreed")
    finally:
        fed.stop()
        if broker:
            broker.stop()


def one_hour_of_lag(now: float) -> dict:
    lag = {}
    for i, o in enumerate(("un", "eu", "osce", "arf")):
        lag[o] = [
            [round(now - 3600 + k * 10), max(0, round(6 * math.sin(k / (12 + 5 * i)) + (3 if o == "osce" else 0)))]
            for k in range(361)
        ]
    return {"lag": lag, "feed": []}


def test_stopped_node_shows_offline_with_its_lag_and_never_seen_node(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu", "osce", "arf"), pull_interval=30)  # HTTP alone; arf is never started
    try:
        fed.start("un", "eu", "osce")
        op = run("token", "issue", "--data", fed["un"].data, "--operator", "watch").output.strip()
        fed["eu"].put(entry("DEU/technical"))
        fed.wait_converged("un", "eu", "osce")
        wait_for(lambda: health(fed["un"].url, op)["converged"], 10, "un to see convergence")
        fed["osce"].stop()
        stopped_at = time.time()
        for i in range(3):
            fed["eu"].put(entry("FRA/technical", notes=f"while osce is down {i}"))
        wait_for(lambda: fed["un"].digest() == fed["eu"].digest(), 30, "un to follow eu")
        wait_for(lambda: health(fed["un"].url, op)["origins"]["osce"]["status"] == "offline", 20, "osce offline")
        h = health(fed["un"].url, op)
        osce = h["origins"]["osce"]
        assert osce["offline_since"] >= stopped_at - 1 and osce["last_error"]
        assert osce["behind"] == 3 and h["nodes_behind"]["osce"] == 3 and not h["converged"]
        assert h["announcements"]["osce"]["state"] == "behind"
        assert h["origins"]["arf"]["status"] == "never seen" and h["origins"]["eu"]["status"] == "online"
        out = sh("status", "--url", fed["un"].url, "--token", _file(tmp_path, op), check=False)
        text = out.stdout.decode()
        assert out.returncode == 1 and "offline since" in text and "never seen" in text
        assert "lacks 3 change-set(s)" in text

        with browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.route(
                "**/v1/health/history",
                lambda route: route.fulfill(
                    status=200, content_type="application/json", body=json.dumps(one_hour_of_lag(time.time()))
                ),
            )
            with page.expect_response("**/v1/session"):  # the not-signed-in probe: 200, no console error
                page.goto(fed["un"].url + "/dashboard")
            page.wait_for_timeout(200)
            assert page.is_visible("#signin") and errors == [], errors
            page.fill("#token", op)
            page.click("#signin-btn")
            page.wait_for_selector(".node-card[data-node='osce'][data-status='offline']", timeout=15000)
            card = page.inner_text(".node-card[data-node='osce']")
            assert "offline since" in card and "behind by 3 change-sets" in card, card
            assert "never seen" in page.inner_text(".node-card[data-node='arf']")
            assert "online" in page.inner_text(".node-card[data-node='eu']")
            assert "lacks 3 change-sets" in page.inner_text("#digests")
            assert "Nothing quarantined or refused" in page.inner_text("#feed")
            ticks = page.eval_on_selector_all("#chart text", "els => els.map(e => e.textContent)")
            assert "now" in ticks and len([t for t in ticks if ":" in t]) >= 6  # a labelled time axis
            assert page.eval_on_selector_all("#chart polyline", "els => els.length") == 4
            screenshot(page, "dashboard-offline-node")
            assert errors == [], errors
    finally:
        fed.stop()


def _file(tmp_path: Path, token: str) -> Path:
    p = tmp_path / "op.token"
    p.write_text(token)
    return p
