"""Shared pieces of the CLI: error handling, output helpers, common options."""

from __future__ import annotations

import json
import os
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


EXIT_INTERNAL = 3  # a bug: the one-line message asks for POCSYNC_TRACEBACK=1


def fit_to_output(*consoles: Console) -> None:
    """On a terminal, wrap at its width; to a pipe or a file, never wrap (no key split mid-word)."""
    for c in consoles:
        if not c.is_terminal:
            c.soft_wrap = True
            c.width = 1_000_000


def fail(reason: str, message: str, code: int = EXIT_ERROR) -> None:
    """Print one line ``error (reason): message`` on stderr and exit with ``code``."""
    err_console.print("[bold red]error[/] " + escape(f"({reason}): {' '.join(message.split())}"), highlight=False)
    sys.exit(code)


class PocsyncGroup(click.Group):
    """The root group: every error becomes one line ``error (reason): message`` and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        fit_to_output(console, err_console)
        try:
            return super().invoke(ctx)
        except PocsyncError as exc:
            fail(exc.reason, exc.message)
        except OSError as exc:  # a file named on the command line that cannot be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            fail("file_error", f"{where}{exc.strerror or exc}")
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 — a bug; never a raw traceback for a user
            if os.environ.get("POCSYNC_TRACEBACK"):
                raise
            fail("internal_error", f"{type(exc).__name__}: {exc} (a bug in pocsync; run again with "
                                   "POCSYNC_TRACEBACK=1 to see where, and report it)", EXIT_INTERNAL)


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
