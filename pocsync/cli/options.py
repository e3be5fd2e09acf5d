"""Options shared by many commands (click alone: defining a command costs no other import)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The node's data folder (holds sync.toml, store.sqlite and keys/).",
)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def _no_peer_check(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    ctx.meta["no_peer_check"] = value


no_peer_check_option = click.option(
    "--no-peer-check",
    is_flag=True,
    expose_value=False,
    callback=_no_peer_check,
    help="Sign although no peer confirmed this node's head lately (a node working alone; audited).",
)
