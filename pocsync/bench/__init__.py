"""``pocsync bench``: the federation's costs measured next to this machine's own limits, in one run.

Each workload family is a module (ingest, propagation, sync, api, cli_start); each measure in the
JSON report carries its figure, the limit measured in the same run, their ratio and the target
from issue 13.  Nothing here asserts a time: these are figures for an operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAMILIES = ("cli", "ingest", "api", "propagation", "sync")


@dataclass(frozen=True)
class Sizes:
    ingest_small: int
    ingest_large: int
    edits: int
    edit_rate: float
    latency_samples: int
    history: int
    catch_up: tuple[int, ...]
    rss_history: tuple[int, ...]
    api_entries: int
    api_tokens: int
    api_concurrency: int
    api_seconds: float
    cli_runs: int


FULL = Sizes(
    ingest_small=5000,
    ingest_large=40,
    edits=2000,
    edit_rate=10.0,
    latency_samples=1000,
    history=100_000,
    catch_up=(10, 1000, 10_000),
    rss_history=(1_000_000,),
    api_entries=500,
    api_tokens=200,
    api_concurrency=32,
    api_seconds=10.0,
    cli_runs=10,
)
QUICK = Sizes(
    ingest_small=300,
    ingest_large=4,
    edits=10,
    edit_rate=20.0,
    latency_samples=100,
    history=500,
    catch_up=(10, 100),
    rss_history=(),
    api_entries=500,
    api_tokens=200,
    api_concurrency=32,
    api_seconds=1.0,
    cli_runs=3,
)


def sized(base: Sizes, *, history: int | None = None, edits: int | None = None) -> Sizes:
    """``base`` with a smaller or larger history (catch-up at 10, N/100, N/10; no extra RSS run) or edit count."""
    from dataclasses import replace

    s = base
    if history is not None:
        ks = tuple(sorted({10, max(11, history // 100), max(12, history // 10)}))
        s = replace(s, history=history, catch_up=tuple(k for k in ks if k < history), rss_history=())
    if edits is not None:
        s = replace(s, edits=edits)
    return s


def run(
    *,
    quick: bool,
    only: tuple[str, ...] = FAMILIES,
    progress: Callable[[str], None] = lambda s: None,
    workdir: Path | None = None,
    history: int | None = None,
    edits: int | None = None,
) -> dict[str, Any]:
    """Run the chosen families; the report (errors of a family are recorded under ``errors``)."""
    import tempfile
    import traceback

    from pocsync.bench import machine

    sizes = sized(QUICK if quick else FULL, history=history, edits=edits)
    report: dict[str, Any] = {
        "benchmark": "pocsync bench",
        "mode": "quick" if quick else "full",
        "machine": machine.facts(),
        "sizes": sizes.__dict__,
        "measures": {},
        "errors": {},
    }
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pocsync-bench-", dir=workdir) as d:
        base = Path(d)
        for fam in only:
            progress(f"{fam} …")
            t0 = time.perf_counter()
            try:
                report["measures"].update(_family(fam, base / fam, sizes))
            except Exception as exc:  # a failed family is reported, the others still run
                report["errors"][fam] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            progress(f"{fam} done in {time.perf_counter() - t0:.1f} s")
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    return report


def _family(fam: str, base: Path, s: Sizes) -> dict[str, Any]:
    if fam == "cli":
        from pocsync.bench import cli_start

        return cli_start.run(runs=s.cli_runs)
    if fam == "ingest":
        from pocsync.bench import ingest

        return ingest.run(base, small=s.ingest_small, large=s.ingest_large)
    if fam == "api":
        from pocsync.bench import api

        return api.run(
            base, entries=s.api_entries, n_tokens=s.api_tokens, concurrency=s.api_concurrency, seconds=s.api_seconds
        )
    if fam == "propagation":
        from pocsync.bench import propagation

        return propagation.run(base, edits=s.edits, rate=s.edit_rate, samples=s.latency_samples)
    if fam == "sync":
        from pocsync.bench import sync

        return sync.run(base, n=s.history, ks=s.catch_up, rss_n=s.rss_history)
    raise ValueError(f"unknown workload family {fam!r}; one of {', '.join(FAMILIES)}")


def table(report: dict[str, Any]) -> list[list[str]]:
    """Rows for a terminal table: measure, figure, limit, ratio, target."""
    rows = []
    for name, m in report["measures"].items():
        fig = m.get("figure")
        if "figure_p99" in m:
            fig = f"{fig} / {m['figure_p99']}"
        lim = m.get("limit")
        if "limit_p99" in m:
            lim = f"{lim} / {m['limit_p99']}"
        ratio = m.get("ratio")
        if "ratio_p99" in m:
            ratio = f"{ratio} / {m['ratio_p99']}"
        rows.append([name, f"{fig} {m.get('unit', '')}", str(lim), str(ratio), str(m.get("target", ""))])
    return rows
