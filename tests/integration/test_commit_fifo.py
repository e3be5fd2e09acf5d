"""A real `pocsync run` learns of a `pocsync entry put` (another process) through its commit FIFO (ADR 41),
and falls back to its data_version safety net, with one warning, when the pipe's path is taken."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.nodes import Federation, Node, entry, wait_for


def unpublished(node: Node) -> int:
    c = sqlite3.connect(f"file:{node.data / 'store.sqlite'}?mode=ro", uri=True)
    try:
        return int(c.execute("SELECT count(*) FROM log WHERE origin=? AND published=0", (node.name,)).fetchone()[0])
    finally:
        c.close()


def cli_put(node: Node, state: str) -> None:
    """`pocsync entry put` as its own process, as an operator runs it beside the daemon."""
    exe = Path(sys.executable).parent / "pocsync"
    body = json.dumps([entry(f"{state}/technical")])
    args = [str(exe), "entry", "put", "--data", str(node.data), "-", "--author", f"staff@{node.name}"]
    done = subprocess.run(args, input=body, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_cli_commit_wakes_the_daemon_through_the_fifo_and_a_taken_path_falls_back(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=30)
    un, eu = fed["un"], fed["eu"]
    toml = eu.data / "sync.toml"
    toml.write_text(toml.read_text().replace("[sync]\n", "[sync]\npublish_poll_ms = 600000\n"))
    fifo = eu.data / "store.commits"
    try:
        eu.start()
        assert fifo.is_fifo() and fifo.stat().st_mode & 0o777 == 0o600
        assert eu.stats(as_node=un)["counters"].get("commit_notifications", 0) == 0
        cli_put(eu, "AUT")
        t0 = time.monotonic()
        wait_for(lambda: unpublished(eu) == 0, 10, "eu to publish the CLI's change-set")
        print(f"published {time.monotonic() - t0:.3f} s after `entry put` returned")
        assert eu.stats(as_node=un)["counters"]["commit_notifications"] >= 1, "woken by the notification"
        eu.stop()
        assert not fifo.exists(), "a clean shutdown removes the pipe"

        fifo.write_bytes(b"not a pipe")  # the path taken: the daemon must neither read nor write it
        eu.start()
        cli_put(eu, "DEU")
        wait_for(lambda: unpublished(eu) == 0, 10, "eu to publish by its data_version safety net")
        assert eu.stats(as_node=un)["counters"].get("commit_notifications", 0) == 0
        eu.stop()
        assert fifo.read_bytes() == b"not a pipe"
        warnings = [ln for ln in eu.log.read_text().splitlines() if "commit pipe" in ln]
        assert len(warnings) == 1 and "WARNING" in warnings[0] and "polling only" in warnings[0], warnings
    finally:
        fed.stop()
        print(fed.logs())
