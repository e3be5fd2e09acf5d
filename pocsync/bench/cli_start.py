"""CLI start-up: ``pocsync --help`` wall time against ``python -c pass`` (the interpreter's own start)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any


def _wall(argv: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def run(*, runs: int) -> dict[str, Any]:
    cli = _wall([sys.executable, "-m", "pocsync.cli.main", "--help"], runs)
    bare = _wall([sys.executable, "-c", "pass"], runs)
    fig, lim = statistics.median(cli), statistics.median(bare)
    return {
        "cli_start": {
            "what": "`pocsync --help` wall time, median of runs",
            "runs": runs,
            "figure": round(fig, 3),
            "unit": "s",
            "min": round(min(cli), 3),
            "max": round(max(cli), 3),
            "limit": round(lim, 3),
            "limit_what": "`python -c pass` wall time, median",
            "ratio": round(fig / lim, 2),
            "target": "<= 0.25 s",
            "higher_is_better": False,
        }
    }
