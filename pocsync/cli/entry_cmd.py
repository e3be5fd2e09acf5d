"""``pocsync entry put|delete|withdraw|list|show``: edit and read this node's entries.

``entry import`` is in import_cmd.py, ``entry confirm|overdue`` in check_cmd.py and the held-change
commands in held_cmd.py; the ``entry`` group lists them all (registry.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import Progress

from pocsync.cli.common import (
    data_option,
    err_console,
    json_option,
    looks_like_csv,
    no_peer_check_option,
    print_json,
    read_input,
    table,
)
from pocsync.cli.signing import author_of, sign_ops
from pocsync.core import jsonc, model
from pocsync.directory import freshness, intake
from pocsync.errors import EntryError, MalformedJSON
from pocsync.folder.nodedir import NodeDir
from pocsync.store.sqlite import now_ms


def _validate(records: list[Any]) -> list[dict[str, Any]]:
    """Every record validated strictly (warnings printed), as put ops; EntryError naming each invalid one."""
    today = datetime.now(UTC).date().isoformat()
    ops, problems = [], []
    with Progress(console=err_console, transient=True, disable=len(records) < 50) as progress:
        task = progress.add_task("validating", total=len(records))
        for i, rec in enumerate(records, start=1):
            try:
                clean, warnings = intake.validate_entry(rec, record=str(i), today_iso=today)
            except EntryError as exc:
                problems.append(exc)
            else:
                for w in warnings:
                    err_console.print(
                        "[yellow]warning[/] "
                        + escape(f"record {i} ({intake.entry_key(clean)}): {w['field']}: {w['message']}"),
                        highlight=False,
                    )
                ops.append({"op": "put", "key": intake.entry_key(clean), "entry": clean})
            progress.advance(task)
    if problems:
        for problem in problems:
            err_console.print("[red]invalid[/] " + escape(problem.message), highlight=False)
        raise EntryError(f"{len(problems)} of {len(records)} record(s) invalid; nothing was committed")
    return ops


def _put_records(nd: NodeDir, records: list[Any], source: str, author: str) -> None:
    """Validate every record strictly (all or nothing), then commit them as one change-set."""
    if not records:
        raise EntryError(f"{source} holds no entries: nothing to put")
    ops = _validate(records)
    keys_seen = [o["key"] for o in ops]
    dups = sorted({k for k in keys_seen if keys_seen.count(k) > 1})
    if dups:
        raise EntryError(f"the input lists {', '.join(dups)} more than once; nothing was committed")
    sign_ops(nd, ops, author, labels=[f"record {i}" for i in range(1, len(ops) + 1)])


@click.command("put")
@data_option
@no_peer_check_option
@click.argument("src", metavar="FILE|-")
@click.option("--author", default=None, help="Staff member making the edit (audit); default user@node.")
def entry_put(data: Path, src: str, author: str | None) -> None:
    """Add or replace entries from FILE (one JSON entry or a JSON array), validated strictly.

    \b
    An entry is a JSON object; its JSON Schema is docs/entry.schema.json.
    Required:
      state            ISO 3166-1 alpha-3 code of the State, e.g. "AUT"
      kind             "technical" (CSIRT) or "diplomatic" (ministry)
      organisation     e.g. "Example National CSIRT"
      emails, phones   lists; at least one of them; phones in E.164 ("+4315123456")
    Optional:
      position         e.g. "Duty officer"
      person           a named individual (diplomatic PoCs only)
      available_24_7   true or false
      timezone         IANA name, e.g. "Europe/Vienna"
      languages        ISO 639-1 codes, e.g. ["de", "en"]
      networks         regional networks, e.g. ["eu-csirts"]
      secure_channels  e.g. [{"type": "openpgp", "fingerprint": "…", "expires": "2027-01-31"}]
      notes            free text
      public_key       armored OpenPGP public key (gpg --armor --export), with
      public_key_fingerprint  the fingerprint you verified with its holder (checked)
    The key of an entry is STATE/KIND; a put replaces this node's listing of that key.

    All records are checked first, then committed as one signed change-set; if any record is invalid or
    outside this node's scope, nothing is committed.  For a CSV or a regional format use `entry import`.
    """
    nd = NodeDir.open(data)
    raw = read_input(src)
    try:
        parsed = jsonc.loads(raw)
    except MalformedJSON as exc:
        text = raw[:4096].decode("utf-8", "replace")
        if src.lower().endswith((".csv", ".tsv")) or looks_like_csv(text):
            raise EntryError(
                f"{src} looks like CSV, not JSON: import it with `pocsync entry import --data {data} "
                f"{src} --adapter csv`",
                reason="csv_given_to_put",
            ) from None
        raise EntryError(f"{src}: {exc.message}", reason=exc.reason) from None
    _put_records(nd, parsed if isinstance(parsed, list) else [parsed], src, author_of(author, nd))


@click.command("delete")
@data_option
@no_peer_check_option
@click.argument("key")
@click.option("--author", default=None, help="Staff member making the edit (audit).")
def entry_delete(data: Path, key: str, author: str | None) -> None:
    """Stop listing KEY at this node (other regions' listings stay)."""
    model.parse_key(key)
    nd = NodeDir.open(data)
    ops = [{"op": "delete", "key": key}]
    with nd.store() as store:  # a typo must not sign an empty delete and say "committed"
        own = [v for v in store.versions_by_key().get(key, []) if v["origin"] == nd.node_id]
        peers_refuse = store.replica(source="local").check_ops(ops, me=nd.node_id, now_ms=now_ms())
    if not peers_refuse and (not own or own[0]["op"] != "put"):  # a rule peers apply is named first (by sign_ops)
        raise EntryError(
            f"{nd.node_id} does not list {key}: nothing to delete, so nothing was committed "
            f"(`pocsync entry list --data {data}` shows what is listed; a State's withdrawal of a "
            "PoC listed elsewhere is `entry withdraw`)",
            reason="not_listed",
        )
    sign_ops(nd, ops, author_of(author, nd))


@click.command("withdraw")
@data_option
@no_peer_check_option
@click.argument("key")
@click.option("--author", default=None, help="Staff member making the edit (audit).")
def entry_withdraw(data: Path, key: str, author: str | None) -> None:
    """Record that the State withdrew KEY: it leaves the directory everywhere until a later put."""
    model.parse_key(key)
    nd = NodeDir.open(data)
    sign_ops(nd, [{"op": "withdraw", "key": key}], author_of(author, nd))


@click.command("list")
@data_option
@json_option
def entry_list(data: Path, as_json: bool) -> None:
    """The merged view: one row per key, with the winning origin."""
    with NodeDir.open(data).store() as store:
        rows = store.entries()
    if as_json:
        print_json(rows)
        return
    table(
        f"{len(rows)} entries",
        ["key", "organisation", "position", "origin", "hlc", "author"],
        [
            [r["key"], r["entry"].get("organisation"), r["entry"].get("position"), r["origin"], r["hlc"], r["author"]]
            for r in rows
        ],
    )


@click.command("show")
@data_option
@click.argument("key", required=False)
def entry_show(data: Path, key: str | None) -> None:
    """One entry with its provenance (every origin's latest version) and its last_modified, last_verified and
    last_confirmed; all entries without KEY."""
    with NodeDir.open(data).store() as store:
        if key is None:
            print_json(store.entries())
            return
        row = store.entry(key)
        if row is not None:  # last_modified, last_verified, last_confirmed, per-channel verification (§15)
            row.update(freshness.by_key(store, now_ms=now_ms(), key=key).get(key, {}))
    if row is None:
        raise EntryError(f"{key} is not in the merged view", reason="not_found")
    print_json(row)
