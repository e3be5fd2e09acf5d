"""``pocsync bench``: the click command (the workloads are imported only when it runs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

FAMILIES = ("cli", "ingest", "api", "propagation", "sync")


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes (well under a minute): checks the benchmark works.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON report here (default: print it on stdout).",
)
@click.option(
    "--only",
    default=",".join(FAMILIES),
    show_default=True,
    metavar="LIST",
    help="Comma-separated workload families to run.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder for the run's temporary nodes (default: the system temporary folder).",
)
@click.option(
    "--history",
    type=click.IntRange(min=100),
    default=None,
    metavar="N",
    help="History size for cold start and catch-up instead of the mode's (catch-up at 10, N/100, N/10).",
)
@click.option(
    "--edits",
    type=click.IntRange(min=5),
    default=None,
    metavar="N",
    help="Edits for each propagation run instead of the mode's.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the JSON report on stdout (also with --out), not the table."
)
def bench_cmd(
    quick: bool,
    out: Path | None,
    only: str,
    workdir: Path | None,
    history: int | None,
    edits: int | None,
    as_json: bool,
) -> None:
    """Measure this machine: each cost next to the limit measured in the same run, as JSON.

    Starts its own nodes (and a private Mosquitto when one is installed) on loopback; never touches
    a running node.  The full run takes long (a history of 100 000 and 1 000 000 change-sets).
    Exits 1 when a workload failed (its error is in the report).
    """
    fams = tuple(f.strip() for f in only.split(",") if f.strip())
    bad = [f for f in fams if f not in FAMILIES]
    if bad or not fams:
        raise click.BadParameter(
            f"unknown family {', '.join(bad) or '(none)'}; choose from {', '.join(FAMILIES)}", param_hint="--only"
        )
    if out is not None and not out.parent.is_dir():  # refused before hours of measuring, not after
        raise click.BadParameter(f"{out.parent} is not a folder", param_hint="--out")
    from pocsync import bench
    from pocsync.cli.common import err_console, table

    report = bench.run(
        quick=quick,
        only=fams,
        workdir=workdir,
        history=history,
        edits=edits,
        progress=lambda s: err_console.print(s, highlight=False),
    )
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if out is not None:
        out.write_text(text + "\n")
    if out is None or as_json:
        click.echo(text)
    else:
        table(
            f"pocsync bench ({report['mode']}, {report['seconds']} s)",
            ["measure", "pocsync", "in-run limit", "ratio", "target"],
            bench.table(report),
        )
    for fam, err in report["errors"].items():
        err_console.print(f"[bold red]{fam} failed[/]: {err.splitlines()[0]}", highlight=False)
    if report["errors"]:
        sys.exit(1)


if __name__ == "__main__":  # python -m pocsync.cli.bench_cmd: the same command without the full CLI
    bench_cmd(prog_name="pocsync bench")
