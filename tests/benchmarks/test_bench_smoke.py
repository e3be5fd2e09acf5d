"""The benchmark runs and writes its JSON (tiny sizes; no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_benchmark_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_sync", "--out", str(out), "--edits", "2",
                    "--history", "50"], check=True, cwd=Path(__file__).parents[2], capture_output=True, timeout=300)
    data = json.loads(out.read_text())
    assert data["machine"]["sqlite_full_sync_commits_per_s"] > 0
    assert data["core"]["changesets"] == 50
    assert [p["transport"] for p in data["propagation"]] == ["mqtt", "http-poke"]
