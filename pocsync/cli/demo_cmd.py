"""``pocsync demo``: the click command (the demo is imported only when it runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--mqtt",
    "mqtt_url",
    default="",
    metavar="URL",
    help="Use this broker (mqtt://host:port); without it the nodes sync over HTTP alone.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Run the scenario this long, then stop everything; exit 0 only if the federation converged.",
)
@click.option("--keep", is_flag=True, help="Leave the federation running for exploring; Ctrl-C stops every process.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's keys, stores and logs (default: a new temporary folder).",
)
def demo_cmd(mqtt_url: str, duration: float | None, keep: bool, directory: Path | None) -> None:
    """Run a whole federation here (un, eu, osce, arf) with an invented directory, shown live."""
    from pocsync.demo.run import run_demo

    sys.exit(run_demo(mqtt=mqtt_url, duration=duration, keep=keep, directory=directory))
