"""[[sources]]: the running daemon keeps a spreadsheet in step; health and the dashboard (Chromium) show it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_operations import get
from tests.support.browser import browser, screenshot
from tests.support.cli import run
from tests.support.nodes import Federation, wait_for

pytestmark = pytest.mark.slow

CSV = (
    "state,kind,organisation,emails,phones,available_24_7\n"
    "AUT,technical,Example CSIRT of Austria (fictional),duty@csirt-aut.example.org,+4315123456,yes\n"
    "DEU,technical,Example CERT of Germany (fictional),cert@cert-deu.example.org,+49 30,yes\n"
    "FRA,diplomatic,Example MFA of France (fictional),cyber@mfa-fra.example.org,,\n"
)


def test_daemon_keeps_a_csv_source_in_step(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=2)
    src = fed["eu"].data / "members.csv"
    src.write_text(CSV)
    toml = fed["eu"].data / "sync.toml"
    toml.write_text(
        toml.read_text() + '\n[[sources]]\nname = "members-sheet"\nadapter = "csv"\n'
        'source = "members.csv"\ninterval_seconds = 5\nsync_deletes = true\n'
    )
    try:
        fed.start()

        def keys(node: str) -> dict:
            with fed[node].store() as s:
                return {r["key"]: r["entry"] for r in s.entries()}

        wait_for(lambda: set(keys("un")) == {"AUT/technical", "FRA/diplomatic"}, 60, "the sheet to reach un")
        op = run("token", "issue", "--data", fed["eu"].data, "--operator", "watch").output.strip()
        h = json.loads(get(fed["eu"].url + "/v1/health", op)[1])
        st = h["sources"]["members-sheet"]
        assert st["result"] == "invalid records skipped" and st["invalid"] == 1
        assert st["invalid_reasons"] == {"bad_phone": 1} and st["valid"] == 2
        assert "duty@csirt-aut" not in json.dumps(h) and "+49 30" not in json.dumps(h)

        # the secretariat fixes the sheet and drops France: one change-set with a put and a delete
        src.write_text(CSV.replace("+49 30", "+493012345678").replace(CSV.splitlines()[3] + "\n", ""))
        wait_for(lambda: set(keys("un")) == {"AUT/technical", "DEU/technical"}, 60, "the edit to reach un")
        with fed["eu"].store() as s:
            assert s.conn.execute("SELECT count(*) FROM log WHERE origin='eu'").fetchone()[0] == 2

        with browser() as b:
            page = b.new_page()
            page.goto(fed["eu"].url + "/dashboard")
            page.fill("#token", op)
            page.click("#signin-btn")
            page.wait_for_selector("#sources tbody tr td:has-text('members-sheet')", timeout=15000)
            wait_for(
                lambda: "2 (2 valid, 0 skipped)" in page.inner_text("#sources"),
                30,
                "the dashboard to show the fixed sheet's counts (it polls every few seconds)",
            )
            row = page.inner_text("#sources tbody tr")
            assert "members-sheet" in row and "csv" in row and ("unchanged" in row or "published" in row)
            screenshot(page, "dashboard-sources")
            assert "duty@csirt-aut" not in page.content()
    finally:
        fed.stop()
