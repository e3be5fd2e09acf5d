"""Shared pieces of the CLI: error handling, output helpers, common options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pocsync.errors import PocsyncError

console = Console()
err_console = Console(stderr=True)

EXIT_ERROR = 2  # usage or input error; 1 is "ran, but something was quarantined/refused/unhealthy"


class PocsyncGroup(click.Group):
    """A click group that turns pocsync errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PocsyncError as exc:
            err_console.print(f"[bold red]error[/] ({exc.reason}): {escape(exc.message)}", highlight=False)
            sys.exit(EXIT_ERROR)


data_option = click.option(
    "--data", "data", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="The node's data folder (holds sync.toml, store.sqlite and keys/).",
)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)


def read_input(src: str) -> bytes:
    if src == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(src).read_bytes()
    except FileNotFoundError:
        raise click.BadParameter(f"file {src} not found") from None
