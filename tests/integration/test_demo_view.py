"""``pocsync demo`` (issue 9): the live view fits a 120×50 terminal at every stage, shows the URLs and
token files while it runs (not only after Ctrl-C), and gives one reading of convergence: its table
never says converged while the UN node's health says otherwise."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from pocsync.demo.data import SCENARIO
from pocsync.demo.run import Demo

pytestmark = pytest.mark.slow


def rendered(demo: Demo) -> str:
    c = Console(file=io.StringIO(), width=120, height=50, color_system=None)
    c.print(demo.view(demo.poll(), "pocsync demo"))
    return c.file.getvalue()  # type: ignore[attr-defined]


def check(text: str, demo: Demo) -> None:
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= 50 and max(len(x) for x in lines) <= 120, f"{len(lines)} lines:\n{text}"
    for needle in (
        demo.nodes["eu"].url + "/",
        demo.nodes["un"].url + "/dashboard",
        str(demo.base / "poc.token"),
        str(demo.base / "operator.token"),
        "pocsync status --url",
    ):
        assert needle in text.replace("\n", ""), needle


def test_demo_view_fits_shows_urls_while_running_and_reads_convergence_once(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "demo")
    demo.base.mkdir()
    try:
        demo.setup()
        demo.start()
        demo.issue_tokens()
        check(rendered(demo), demo)  # at once, before any edit
        assert (demo.base / "operator.token").stat().st_mode & 0o777 == 0o600
        for node, label, entries in SCENARIO:
            demo.edit(node, label, entries)
            check(rendered(demo), demo)
        assert (demo.base / "poc.token").stat().st_mode & 0o777 == 0o600
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = demo.poll()
            if demo.stores_agree(state):
                demo.refresh_health()
            verdict, _ = demo.verdict(state)
            if verdict.startswith("converged"):  # one reading: only with un's health agreeing
                assert demo.health_doc["converged"] is True
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no convergence: {demo.health_doc}")
        demo.findings_after_convergence()
        text = rendered(demo)
        check(text, demo)
        assert "converged: every node holds the same view" in text and "NOT converged" not in text
        assert "reads health: HTTP 200, converged" in text
        assert "reads the merged directory at osce: HTTP 200" in " ".join(text.split())
        assert "AUT/diplomatic" in text  # the listing itself
        assert "divergence report: directories that disagree (for the secretariats to fix)" in text  # one line
    finally:
        demo.stop()
