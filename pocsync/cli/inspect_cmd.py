"""``pocsync digest``, ``quarantine list`` and ``audit``: what this node holds, did not apply, and logged."""

from __future__ import annotations

from pathlib import Path

import click

from pocsync.cli.common import data_option, json_option, print_json, table
from pocsync.folder.nodedir import NodeDir


@click.command("digest")
@data_option
def digest(data: Path) -> None:
    """Print the view digest (sha256:<hex>) alone on one line."""
    with NodeDir.open(data).store() as store:
        click.echo(store.digest())


@click.command("list")
@data_option
@json_option
def quarantine_list(data: Path, as_json: bool) -> None:
    """Quarantined change-sets, refused ops, parked change-sets and equivocation proofs, with reasons."""
    with NodeDir.open(data).store() as store:
        q, r, p, e = store.quarantined(), store.refused(), store.parked(), store.proofs()
    if as_json:
        print_json({"quarantined": q, "refused": r, "parked": p, "equivocations": e})
        return
    table(
        f"quarantined change-sets ({len(q)})",
        ["#", "received", "source", "size", "reason", "message"],
        [[x["n"], x["received_at"], x["source"], x["size"], x["reason"], x["message"]] for x in q],
    )
    table(
        f"refused ops ({len(r)})",
        ["origin", "seq", "op", "key", "reason", "message"],
        [[x["origin"], x["seq"], f"{x['idx']}:{x['op']}", x["key"], x["reason"], x["message"]] for x in r],
    )
    table(
        f"parked change-sets ({len(p)})",
        ["origin", "seq", "reason", "message"],
        [[x["origin"], x["seq"], x["reason"], x["message"]] for x in p],
    )
    if e:
        table(
            f"EQUIVOCATIONS ({len(e)})",
            ["origin", "seq", "one id", "other id"],
            [[x["origin"], x["seq"], x["id_a"], x["id_b"]] for x in e],
        )


@click.command("audit")
@data_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=200, show_default=True, help="How many rows, newest first."
)
@json_option
def audit_cmd(data: Path, limit: int, as_json: bool) -> None:
    """The audit log: every directory read and every token issued (who, what, when, result)."""
    with NodeDir.open(data).store() as store:
        rows = store.audit_log(limit)
    if as_json:
        print_json(rows)
        return
    table(
        f"audit log ({len(rows)} newest)",
        ["when", "who", "action", "target", "result", "detail"],
        [[r["at"], r["actor"], r["action"], r["target"], r["result"], r["detail"]] for r in rows],
    )
