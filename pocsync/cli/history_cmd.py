"""``pocsync history``: a State's audit trail from this node's store (issue 16 part 2, PROTOCOL.md §17.1-17.2)."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click

from pocsync.cli.common import console, data_option, json_option, print_json, table
from pocsync.core import model
from pocsync.directory import history as hist
from pocsync.errors import EntryError
from pocsync.folder.nodedir import NodeDir


def _state(state: str) -> str:
    s = state.upper()
    if not model.STATE_RE.match(s):
        raise EntryError(f"{state!r} is not an ISO 3166-1 alpha-3 code", reason="bad_state")
    return s


@click.command("show")
@data_option
@click.argument("state")
@json_option
def show(data: Path, state: str, as_json: bool) -> None:
    """Every op on STATE's keys (any origin), with refusals and the fields each op changed."""
    s = _state(state)
    with NodeDir.open(data).store() as store:
        body = hist.state_history(store, s)
        store.audit(actor=f"cli:{getpass.getuser()}", action="history.show", target=s, result="ok")
    if as_json:
        print_json(body)
        return
    table(
        f"history of {s}: {len(body['ops'])} ops, {body['refused']} refused",
        ["time", "origin", "author", "key", "op", "status", "changed fields"],
        [
            [
                x["time"],
                x["origin"],
                x["author"],
                x["key"],
                x["op"],
                x["status"]
                + (f" ({x['reason']})" if x["reason"] else "")
                + (f" (held: {x['held']})" if x.get("held") else ""),
                ", ".join(c["field"] for c in (x["diff"] or {}).get("changes", []) if c["field"] != "holder_epoch"),
            ]
            for x in body["ops"]
        ],
    )


@click.command("bundle")
@data_option
@click.argument("state")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The bundle file to write (JSON; must not exist).",
)
def bundle(data: Path, state: str, out: Path) -> None:
    """Write STATE's history with the signed change-sets and manifests that prove it (PROTOCOL.md §17.2)."""
    s = _state(state)
    if out.exists():
        raise click.BadParameter(f"{out} exists; refusing to overwrite it", param_hint="'--out'")
    with NodeDir.open(data).store() as store:
        body = hist.state_bundle(store, s)
        store.audit(actor=f"cli:{getpass.getuser()}", action="history.bundle", target=s, result="ok", detail=str(out))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())
    console.print(
        f"{len(body['changesets'])} signed change-set(s) for {s} written to {out}"
        + (f"; they also hold ops of {', '.join(body['other_states'])}" if body["other_states"] else "")
    )
