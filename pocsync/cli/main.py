"""Entry point of the ``pocsync`` command: the root group and its command table, and the ``log`` group.

Every other command lives in a module of its own, imported only when it runs (group.py, registry.py):
``pocsync --help`` imports click and this package's small modules, not rich, the store or the core.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pocsync import __version__
from pocsync.cli import registry
from pocsync.cli.group import PocsyncGroup
from pocsync.cli.options import data_option, json_option

if TYPE_CHECKING:  # bound by _log_imports() when a `log` command runs, not for `pocsync --help`
    from rich.progress import Progress

    from pocsync.cli.common import console, err_console, print_json, read_input, table
    from pocsync.core.outcome import Status
    from pocsync.core.tally import Tally
    from pocsync.folder.nodedir import NodeDir

IMPORT_BATCH = 500


@click.group(cls=PocsyncGroup, lazy=registry.ROOT, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pocsync")
def cli() -> None:
    """pocsync: federated directory of cyber/ICT-security Points of Contact.

    Secretariats edit their entries; every node merges all signed change-sets into
    the same view; only PoCs can read it.
    """


for _group in registry.GROUPS:
    cli.add_command(_group)


def _log_imports() -> None:
    """The names the ``log`` commands use, imported when one of them runs."""
    global Progress, console, err_console, print_json, read_input, table, Status, Tally, NodeDir
    from rich.progress import Progress

    from pocsync.cli.common import console, err_console, print_json, read_input, table
    from pocsync.core.outcome import Status
    from pocsync.core.tally import Tally
    from pocsync.folder.nodedir import NodeDir


# --- the log -----------------------------------------------------------------------------
@cli.group("log")
def log() -> None:
    """Export, import and verify the change-set log."""
    _log_imports()


@log.command("export")
@data_option
@click.option("--origin", default=None, help="Only this origin's change-sets.")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Only seqs after this one.")
def log_export(data: Path, origin: str | None, after: int) -> None:
    """Write stored envelopes as JSON lines, verbatim, in (origin, seq) order."""
    out = sys.stdout.buffer
    with NodeDir.open(data).store() as store:
        for env in store.export(origin=origin, after=after):
            out.write(env + b"\n")
    out.flush()


@log.command("import")
@data_option
@click.argument("src", metavar="FILE|-")
def log_import(data: Path, src: str) -> None:
    """Apply envelopes (JSON lines) by the acceptance and effect rules.

    Exits 1 when anything was quarantined or an op refused.
    """
    lines = [ln.rstrip(b"\r") for ln in read_input(src).split(b"\n") if ln.strip()]
    tally = Tally()  # counts by each change-set's last outcome: never a negative count
    nd = NodeDir.open(data)
    with nd.store() as store, Progress(console=err_console, transient=True, disable=len(lines) < 200) as progress:
        task = progress.add_task("importing", total=len(lines))
        for start in range(0, len(lines), IMPORT_BATCH):
            with store.transaction():
                for line in lines[start : start + IMPORT_BATCH]:
                    tally.add(store.receive(line, source="import"))
                    progress.advance(task)
        for out in store.retry_parked(reason="clock_skew"):
            tally.add(out)
    counts, refused, shown = tally.counts(), tally.refused, tally.not_applied()
    table("import", [*map(str, Status), "refused ops"], [[*(counts[s] for s in Status), len(refused)]])
    if shown:
        table(
            "not applied",
            ["status", "origin", "seq", "reason", "message"],
            [[o.status, o.origin, o.seq, o.reason, o.message] for o in shown],
        )
    if refused:
        table(
            "refused ops",
            ["origin", "seq", "op", "key", "reason", "message"],
            [[r.origin, r.seq, f"{r.index}:{r.op}", r.key, r.reason, r.message] for r in refused],
        )
    if counts[Status.QUARANTINED] or refused or counts[Status.EQUIVOCATION]:
        sys.exit(1)


@log.command("verify")
@data_option
@json_option
def log_verify(data: Path, as_json: bool) -> None:
    """Re-verify every stored signature and chain link.  Exits 1 on any problem."""
    with NodeDir.open(data).store() as store:
        n, problems = store.verify_log()
    if as_json:
        print_json(
            {"verified": n, "problems": [{"origin": p.origin, "seq": p.seq, "problem": p.problem} for p in problems]}
        )
    elif problems:
        table(
            f"{len(problems)} problem(s) in {n} change-sets",
            ["origin", "seq", "problem"],
            [[p.origin, p.seq, p.problem] for p in problems],
        )
    else:
        console.print(f"ok: {n} change-sets verified")
    if problems:
        sys.exit(1)


def main() -> None:
    cli(prog_name="pocsync")


if __name__ == "__main__":
    main()
