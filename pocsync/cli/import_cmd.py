"""``pocsync entry import``, ``pocsync export`` and ``pocsync adapters``: sources in, the merged view out."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pycountry
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pocsync import clock
from pocsync.cli.common import (
    console,
    data_option,
    err_console,
    json_option,
    no_peer_check_option,
    peer_check,
    print_json,
    read_input,
    table,
)
from pocsync.cli.signing import author_of
from pocsync.directory import adapters, freshness, sources
from pocsync.errors import ConfigError, PocsyncError
from pocsync.folder.nodedir import NodeDir

PROGRESS_FROM = 200  # records: show a progress bar from this many on

CSV_COLUMNS = ", ".join(adapters.ENTRY_FIELDS)


def _progress_factory(progress: Progress) -> Callable[[int], Callable[[], None]]:
    def start(total: int) -> Callable[[], None]:
        if total >= PROGRESS_FROM:
            progress.start()
        task = progress.add_task("validating", total=total)
        return lambda: progress.advance(task)

    return start


@click.command("import")
@data_option
@click.argument("src", metavar="SOURCE")
@click.option(
    "--adapter",
    "adapter_name",
    required=True,
    help="Source format: csv, json, vcard, ldif, ldap, ti-teams, first-teams, misp-orgs, or one another "
    "package installs (`pocsync adapters` lists them).",
)
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Mapping file (TOML): source fields to entry fields, kind, qualifying records, network, "
    "defaults (docs/adapters/).",
)
@click.option("--dry-run", is_flag=True, help="Show the diff, commit nothing.")
@click.option(
    "--sync-deletes",
    is_flag=True,
    help="Also delete keys this same source put before and no longer lists (never other entries).",
)
@click.option("--strict", is_flag=True, help="Any invalid record refuses the whole import.")
@click.option(
    "--source-id",
    default=None,
    help="Name under which this source's keys are remembered (default: ADAPTER:absolute path or URL).",
)
@click.option("--author", default=None, help="Staff member making the edit (audit); default user@node.")
@json_option
@no_peer_check_option
def entry_import(
    data: Path,
    src: str,
    adapter_name: str,
    mapping_path: Path | None,
    dry_run: bool,
    sync_deletes: bool,
    strict: bool,
    source_id: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Import a directory that exists today (FILE, - for stdin, or an ldap:// URL) as one change-set.

    \b
    Publishes only the difference to this node's own entries: puts for new or
    changed entries; deletes only with --sync-deletes and only of keys this same
    source put. Invalid records are reported (source reference and field) and
    skipped; exit 1 then, after committing the valid ones. Nothing valid left,
    or --strict with an invalid record: exit 2, nothing committed.

    \b
    CSV without --mapping: a header naming some of these columns, in any order,
    case-insensitive (state, kind and organisation required):
      key, state, kind, organisation, position, person, emails, phones,
      available_24_7, timezone, languages, networks, secure_channels, notes,
      origin, hlc, last_modified, last_verified, last_confirmed
    key, origin, hlc (provenance in an export) and the last_* columns (derived
    freshness) are ignored; list columns take
    ';' between items; available_24_7 yes/no (empty: absent); secure_channels a
    JSON list. Other columns become extra entry fields. Any other header, a
    delimiter or an encoding: --mapping (docs/adapters/csv.md).
    """
    nd = NodeDir.open(data)
    mapping = adapters.load_mapping(mapping_path) if mapping_path else None
    adapter = adapters.load(adapter_name)
    live = getattr(adapter, "live", False)
    payload = None if live else read_input(src)
    if source_id is None:
        where = src if live or src == "-" else str(Path(src).resolve())
        source_id = f"{adapter_name}:{where}"
    plan, out = _import(
        nd,
        adapter_name,
        src,
        as_json,
        mapping=mapping,
        source_id=source_id,
        author=author_of(author, nd),
        sync_deletes=sync_deletes,
        strict=strict,
        dry_run=dry_run,
        data=payload,
    )
    if as_json:
        print_json(plan.report())
    else:
        _show(plan, out)
    if plan.invalid or (out is not None and out.refused):
        sys.exit(1)


def _import(nd: NodeDir, adapter_name: str, src: str, as_json: bool, **kw: Any) -> tuple[sources.Plan, Any]:
    """Run ``sources.import_source`` with a progress bar on stderr; on refusal, show the refused plan and re-raise."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    try:
        return sources.import_source(
            nd,
            adapter_name,
            src,
            progress=_progress_factory(progress),
            before_signing=lambda store: peer_check(nd, store),
            **kw,
        )
    except PocsyncError as exc:
        _stop(progress)
        failed = getattr(exc, "plan", None)
        if failed is not None:
            print_json(failed.report()) if as_json else _show(failed, None, refused_all=True)
        raise
    finally:
        _stop(progress)


def _stop(progress: Progress) -> None:
    """Stop the bar only if it ran: rich prints an empty line for each stop when stderr is not a terminal."""
    if progress.live.is_started:
        progress.stop()


def _rows(rows: list[list[object]]) -> list[list[str]]:
    """Source content is untrusted: never let it be read as rich markup."""
    return [[escape(str(v)) for v in r] for r in rows]


def _show(plan: sources.Plan, out: object, *, refused_all: bool = False) -> None:
    ops = [["put", p["key"], p["change"], ", ".join(p["fields"]), p["ref"]] for p in plan.puts]
    ops += [["delete", d["key"], "no longer in the source", "", ""] for d in plan.deletes]
    if ops:
        table(
            f"{'would publish' if plan.dry_run or refused_all else 'published'}: {len(ops)} op(s)",
            ["op", "key", "change", "fields", "record"],
            _rows(ops),
        )
    if plan.skipped:
        table(
            f"skipped ({len(plan.skipped)}): not qualifying",
            ["record", "reason"],
            _rows([[s["ref"], s["reason"]] for s in plan.skipped]),
        )
    if plan.invalid:
        table(
            f"invalid ({len(plan.invalid)}): not imported",
            ["record", "field", "reason", "message"],
            _rows([[p.ref, p.field, p.reason, p.message] for p in plan.invalid]),
        )
    for w in plan.warnings:
        err_console.print(
            f"[yellow]warning[/] {escape(w['ref'])}: {escape(w['field'])}: {escape(w['message'])}", highlight=False
        )
    summary = (
        f"{plan.records} record(s): {len(plan.present)} valid ({plan.unchanged} unchanged), "
        f"{len(plan.skipped)} skipped, {len(plan.invalid)} invalid"
    )
    if refused_all:
        console.print(f"{summary}; nothing committed", highlight=False)
    elif plan.dry_run:
        console.print(f"dry run: {escape(summary)}; nothing committed", highlight=False)
    elif plan.committed:
        c = plan.committed
        console.print(
            f"committed change-set seq {c['seq']} ({c['cs_id']}) with {c['ops']} op(s); {summary}", highlight=False
        )
        for r in getattr(out, "refused", []):
            err_console.print(f"[yellow]refused[/] op {r.index} on {escape(r.key)}: {r.reason}: {escape(r.message)}")
    else:
        console.print(f"nothing changed: {summary}; no change-set published", highlight=False)


def _writer_names() -> list[str]:
    try:
        return adapters.writers()
    except ConfigError:
        return ["json", "csv", "vcard", "ldif"]


@click.command("export")
@data_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_writer_names()),
    default="json",
    show_default=True,
    help="Any adapter that writes: json (pocsync.export/v1), csv (documented header), vcard (4.0), "
    "ldif (inetOrgPerson).",
)
@click.option(
    "--states",
    default=None,
    metavar="AUT,BEL,...",
    help="Only these States (ISO 3166-1 alpha-3, comma-separated): a regional slice.",
)
@click.option("--network", default=None, metavar="NAME", help="Only entries listing this network.")
@click.option(
    "--base-dn",
    default="ou=pocs,dc=pocsync,dc=example",
    show_default=True,
    help="LDIF only: the base DN the entries are written under.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: stdout)."
)
def export_cmd(data: Path, fmt: str, states: str | None, network: str | None, base_dn: str, out: Path | None) -> None:
    """Export the merged directory in a format another tool loads (or `entry import` reads back); audited."""
    wanted = None
    if states:
        given = {s.strip().upper() for s in states.split(",") if s.strip()}
        codes = {s: (pycountry.countries.get(alpha_3=s) if len(s) == 3 and s.isalpha() else None) for s in given}
        bad = sorted(s for s, c in codes.items() if c is None)
        if bad:
            raise click.BadParameter(f"{', '.join(bad)} not ISO 3166-1 alpha-3", param_hint="--states")
        wanted = set(given)
    writer: Any = adapters.load(fmt)  # a writer adapter: its write() is optional in the Adapter protocol
    with NodeDir.open(data).store() as store:
        rows = [
            r
            for r in store.entries()
            if (wanted is None or r["entry"].get("state") in wanted)
            and (network is None or network in (r["entry"].get("networks") or []))
        ]
        if not rows and (wanted or network):
            nets = sorted({n for r in store.entries() for n in (r["entry"].get("networks") or [])})
            err_console.print(
                f"warning: no entry matches {'--network ' + network if network else '--states'}"
                + (f"; networks in this view: {', '.join(nets) or 'none'}" if network else ""),
                markup=False,
                highlight=False,
            )
        rows = freshness.annotate(store, rows, now_ms=clock.now_ms())  # last_verified & co. (issue 15)
        body = writer.write(rows, base_dn=base_dn) if fmt == "ldif" else writer.write(rows)
        detail = (
            f"{len(rows)} entries"
            + (f" states={','.join(sorted(wanted))}" if wanted else "")
            + (f" network={network}" if network else "")
        )
        store.audit(actor=f"cli:{getpass.getuser()}", action=f"export.{fmt}", target="*", result="ok", detail=detail)
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        out.write_bytes(body)
        err_console.print(f"wrote {len(rows)} entries to {out}")


@click.command("adapters")
@json_option
def adapters_cmd(as_json: bool) -> None:
    """The installed adapters (entry-point group pocsync.adapters): what each reads and writes."""
    rows = []
    for name in sorted(adapters.available()):
        try:
            a = adapters.load(name)
            rows.append(
                {
                    "name": name,
                    "description": getattr(a, "description", ""),
                    "reads": getattr(a, "reads", ""),
                    "writes": getattr(a, "writes", None) or "",
                    "live": bool(getattr(a, "live", False)),
                }
            )
        except ConfigError as exc:
            rows.append(
                {
                    "name": name,
                    "description": f"failed to load: {exc.message}",
                    "reads": "",
                    "writes": "",
                    "live": False,
                }
            )
    if as_json:
        print_json(rows)
        return
    table(
        f"{len(rows)} adapters",
        ["name", "reads", "writes", "description"],
        [[r["name"], r["reads"], r["writes"] or "-", r["description"]] for r in rows],
    )
