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
    # 4 decimals: once `--help` is lazy both figures are tens of milliseconds, and the ratio is of what is shown
    fig, lim = round(statistics.median(cli), 4), round(statistics.median(bare), 4)
    return {
        "cli_start": {
            "what": "`pocsync --help` wall time, median of runs",
            "runs": runs,
            "figure": fig,
            "unit": "s",
            "min": round(min(cli), 4),
            "max": round(max(cli), 4),
            "limit": lim,
            "limit_what": "`python -c pass` wall time, median",
            "ratio": round(fig / lim, 2),
            "target": "<= 0.25 s",
            "higher_is_better": False,
        }
    }
