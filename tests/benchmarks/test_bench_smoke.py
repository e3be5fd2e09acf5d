"""`pocsync bench --quick` runs end to end and its report holds every measure with its in-run limit and ratio.

Real nodes, a real broker, real HTTP; no time is asserted (speed targets live in the benchmark).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MEASURES = (
    "cli_start",
    "ingest_1op",
    "ingest_500op",
    "api_list",
    "api_entry",
    "propagation_mqtt",
    "propagation_http",
    "cold_start",
    "catch_up_k10",
    "catch_up_k100",
    "rss_500",
)


@pytest.mark.slow
def test_bench_quick_writes_every_measure(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = subprocess.run(
        [sys.executable, "-m", "pocsync.cli.main", "bench", "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert report["errors"] == {}
    m = report["machine"]
    assert m["cpus"] >= 1 and m["cpu_model"] and len(m["load_average_at_start"]) == 3
    assert set(MEASURES) <= set(report["measures"]), sorted(report["measures"])
    for name in MEASURES:
        measure = report["measures"][name]
        if measure.get("skipped"):  # only MQTT, and only when no mosquitto is installed
            assert name == "propagation_mqtt", measure
            continue
        assert measure["figure"] > 0 and measure["limit"] > 0, (name, measure)
        expected = measure["figure"] / measure["limit"]
        assert measure["ratio"] == pytest.approx(expected, rel=0.02, abs=0.01), (name, measure)
        assert measure["target"], name
    # the workloads did real work: every catch-up moved at least the missed envelopes
    for k in (10, 100):
        c = report["measures"][f"catch_up_k{k}"]
        assert c["missed"] == k and c["figure"] >= c["limit"]
    assert report["measures"]["cold_start"]["changesets"] == report["sizes"]["history"]
    assert report["measures"]["propagation_http"]["detail"]["samples"] == 3 * report["sizes"]["edits"]


def test_bench_refuses_unknown_family(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "pocsync.cli.main", "bench", "--only", "nope"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert b"unknown family nope" in p.stderr and b"Traceback" not in p.stderr
