"""Entry point of the ``pocsync`` command."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.progress import Progress

from pocsync import __version__, adapters, intake, keyfiles
from pocsync.bench.command import bench_cmd
from pocsync.cli.common import (
    PocsyncGroup,
    console,
    data_option,
    err_console,
    json_option,
    print_json,
    read_input,
    table,
)
from pocsync.cli.manifest_cmd import manifest
from pocsync.cli.status_cmd import status
from pocsync.cli.token_cmd import token
from pocsync.core import jsonc, model
from pocsync.core.keys import ed25519_public_b64, root_keyid
from pocsync.errors import EntryError, MalformedJSON
from pocsync.nodedir import NodeDir

IMPORT_BATCH = 500


@click.group(cls=PocsyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pocsync")
def cli() -> None:
    """pocsync: federated directory of cyber/ICT-security Points of Contact.

    Secretariats edit their entries; every node merges all signed change-sets into
    the same view; only PoCs can read it.
    """


cli.add_command(manifest)
cli.add_command(status)
cli.add_command(token)
cli.add_command(bench_cmd)


# --- keys ----------------------------------------------------------------------------
@cli.group("keys")
def keys() -> None:
    """Generate keys: the offline root key, and new node signing keys."""


@keys.command("root-init")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for root.key (0600) and root.pub.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Encrypt root.key (PKCS#8) with the passphrase in this file.")
def root_init(out: Path, passphrase_file: Path | None) -> None:
    """Create an offline root key pair: OUT/root.key and OUT/root.pub."""
    key = Ed25519PrivateKey.generate()
    out.mkdir(parents=True, exist_ok=True)
    keyfiles.write_private(out / "root.key", key, passphrase=keyfiles.read_passphrase(passphrase_file))
    pub = ed25519_public_b64(key)
    keyfiles.write_public(out / "root.pub", pub)
    console.print(f"root key {root_keyid(pub)} written to {out}/root.key (keep it offline) and {out}/root.pub")


@keys.command("new-signing")
@data_option
@click.option("--name", required=True, help="Name of the new key, e.g. k2 (must be new for this node).")
def new_signing(data: Path, name: str) -> None:
    """Generate a new signing key for a rotation; prints its JSON for `manifest rotate-key --key-info`."""
    nd = NodeDir.open(data)
    key = nd.new_signing_key(name)
    print_json({"node": nd.node_id, "signing_key": {"name": name, "public": ed25519_public_b64(key)}})


# --- node setup ------------------------------------------------------------------------
@cli.command("init")
@click.option("--node", "node_id", required=True, help="Node id, e.g. eu, osce, un.")
@data_option
@click.option("--organisation", default="", help="Organisation running the node.")
@click.option("--listen", default="127.0.0.1:8700", show_default=True, metavar="HOST:PORT",
              help="Where the node's HTTP API listens (peer sync, directory, health).")
@click.option("--mqtt", "mqtt_url", default="", metavar="URL",
              help="Broker, mqtt://[user@]host:port or mqtts://…; none: sync over HTTP pull alone.")
@click.option("--mqtt-password-file", default="", metavar="FILE", help="File holding the broker password.")
@click.option("--peer", "peers", multiple=True, metavar="URL", help="A peer node's URL to pull from (repeatable).")
def init(node_id: str, data: Path, organisation: str, listen: str, mqtt_url: str, mqtt_password_file: str,
         peers: tuple[str, ...]) -> None:
    """Create a node: its keys (mode 0600), its store and DATA/sync.toml."""
    if mqtt_url and not mqtt_url.startswith(("mqtt://", "mqtts://")):
        raise click.BadParameter("--mqtt must start with mqtt:// or mqtts://")
    nd = NodeDir.init(data, node_id=node_id, organisation=organisation, listen=listen, mqtt_url=mqtt_url,
                      mqtt_password_file=mqtt_password_file, peers=peers)
    console.print(f"node {node_id} created in {data}. Next: `pocsync node-info --data {data}` for the manifest.")
    del nd


@cli.command("node-info")
@data_option
@click.option("--key", "key_name", default=None, help="Signing key name to describe (default: the newest).")
def node_info(data: Path, key_name: str | None) -> None:
    """Print the node's public keys as JSON, for `manifest add-node --node-info`."""
    print_json(NodeDir.open(data).node_info(key_name=key_name))


# --- entries ---------------------------------------------------------------------------
@cli.group("entry")
def entry() -> None:
    """Edit and read this node's entries.  Each edit is one signed change-set."""


def _author(author: str | None, nd: NodeDir) -> str:
    return author or f"{getpass.getuser()}@{nd.node_id}"


def _edit(nd: NodeDir, ops: list[dict], author: str) -> None:
    with nd.store() as store:
        key = nd.key_for_next_edit(store)
        out = store.edit(ops, key=key, author=author)
    console.print(f"committed change-set {nd.node_id} seq {out.seq} ({out.cs_id}) with {len(ops)} op(s)")
    for r in out.refused:
        err_console.print(f"[yellow]refused[/] op {r.index} on {r.key}: {r.reason}: {r.message}")
    if out.refused:
        sys.exit(1)


def _put_records(nd: NodeDir, records: list, source: str, author: str) -> None:
    """Validate every record strictly (all or nothing), then commit them as one change-set."""
    if not records:
        raise EntryError(f"{source} holds no entries: nothing to put")
    today = datetime.now(timezone.utc).date().isoformat()
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
                    err_console.print(f"[yellow]warning[/] record {i} ({intake.entry_key(clean)}): "
                                      f"{w['field']}: {w['message']}")
                ops.append({"op": "put", "key": intake.entry_key(clean), "entry": clean})
            progress.advance(task)
    if problems:
        for exc in problems:
            err_console.print(f"[red]invalid[/] {exc.message}", highlight=False)
        raise EntryError(f"{len(problems)} of {len(records)} record(s) invalid; nothing was committed")
    keys_seen = [o["key"] for o in ops]
    dups = sorted({k for k in keys_seen if keys_seen.count(k) > 1})
    if dups:
        raise EntryError(f"the input lists {', '.join(dups)} more than once; nothing was committed")
    _edit(nd, ops, author)


@entry.command("put")
@data_option
@click.argument("src", metavar="FILE|-")
@click.option("--author", default=None, help="Staff member making the edit (audit); default user@node.")
def entry_put(data: Path, src: str, author: str | None) -> None:
    """Add or replace entries from FILE (one JSON entry or a JSON array), validated strictly."""
    nd = NodeDir.open(data)
    try:
        parsed = jsonc.loads(read_input(src))
    except MalformedJSON as exc:
        raise EntryError(f"{src}: {exc.message}", reason=exc.reason) from None
    _put_records(nd, parsed if isinstance(parsed, list) else [parsed], src, _author(author, nd))


@entry.command("import")
@data_option
@click.argument("src", metavar="FILE|-")
@click.option("--adapter", "adapter_name", required=True,
              help="Regional format adapter (entry-point group pocsync.adapters), e.g. csv.")
@click.option("--author", default=None, help="Staff member making the edit (audit); default user@node.")
def entry_import(data: Path, src: str, adapter_name: str, author: str | None) -> None:
    """Import entries from a regional format through an adapter; validated like `entry put`."""
    nd = NodeDir.open(data)
    records = adapters.load(adapter_name).read(read_input(src))
    _put_records(nd, records, src, _author(author, nd))


@entry.command("delete")
@data_option
@click.argument("key")
@click.option("--author", default=None, help="Staff member making the edit (audit).")
def entry_delete(data: Path, key: str, author: str | None) -> None:
    """Stop listing KEY at this node (other regions' listings stay)."""
    model.parse_key(key)
    nd = NodeDir.open(data)
    _edit(nd, [{"op": "delete", "key": key}], _author(author, nd))


@entry.command("withdraw")
@data_option
@click.argument("key")
@click.option("--author", default=None, help="Staff member making the edit (audit).")
def entry_withdraw(data: Path, key: str, author: str | None) -> None:
    """Record that the State withdrew KEY: it leaves the directory everywhere until a later put."""
    model.parse_key(key)
    nd = NodeDir.open(data)
    _edit(nd, [{"op": "withdraw", "key": key}], _author(author, nd))


@entry.command("list")
@data_option
@json_option
def entry_list(data: Path, as_json: bool) -> None:
    """The merged view: one row per key, with the winning origin."""
    with NodeDir.open(data).store() as store:
        rows = store.entries()
    if as_json:
        print_json(rows)
        return
    table(f"{len(rows)} entries", ["key", "organisation", "position", "origin", "hlc", "author"],
          [[r["key"], r["entry"].get("organisation"), r["entry"].get("position"), r["origin"], r["hlc"], r["author"]]
           for r in rows])


@entry.command("show")
@data_option
@click.argument("key", required=False)
def entry_show(data: Path, key: str | None) -> None:
    """One entry with its provenance (every origin's latest version); all entries without KEY."""
    with NodeDir.open(data).store() as store:
        if key is None:
            print_json(store.entries())
            return
        row = store.entry(key)
    if row is None:
        raise EntryError(f"{key} is not in the merged view", reason="not_found")
    print_json(row)


# --- the log -----------------------------------------------------------------------------
@cli.group("log")
def log() -> None:
    """Export, import and verify the change-set log."""


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
    counts = {"accepted": 0, "duplicate": 0, "parked": 0, "quarantined": 0, "equivocation": 0}
    shown, refused = [], []
    nd = NodeDir.open(data)
    with nd.store() as store, Progress(console=err_console, transient=True, disable=len(lines) < 200) as progress:
        task = progress.add_task("importing", total=len(lines))
        for start in range(0, len(lines), IMPORT_BATCH):
            with store.transaction():
                for line in lines[start:start + IMPORT_BATCH]:
                    out = store.receive(line, source="import")
                    for o in [out, *out.also_accepted]:
                        counts[o.status] = counts.get(o.status, 0) + 1
                        refused.extend(o.refused)
                        if o.status in ("parked", "quarantined", "equivocation"):
                            shown.append(o)
                        elif o.status == "accepted" and o is not out:
                            counts["parked"] -= 1  # released from the parking lot by a later line
                            shown = [s for s in shown if s.cs_id != o.cs_id]
                    progress.advance(task)
        store.retry_parked(reason="clock_skew")
    table("import", ["accepted", "duplicate", "parked", "quarantined", "equivocation", "refused ops"],
          [[counts["accepted"], counts["duplicate"], counts["parked"], counts["quarantined"], counts["equivocation"],
            len(refused)]])
    if shown:
        table("not applied", ["status", "origin", "seq", "reason", "message"],
              [[o.status, o.origin, o.seq, o.reason, o.message] for o in shown])
    if refused:
        table("refused ops", ["origin", "seq", "op", "key", "reason", "message"],
              [[r.origin, r.seq, f"{r.index}:{r.op}", r.key, r.reason, r.message] for r in refused])
    if counts["quarantined"] or refused or counts["equivocation"]:
        sys.exit(1)


@log.command("verify")
@data_option
def log_verify(data: Path) -> None:
    """Re-verify every stored signature and chain link.  Exits 1 on any problem."""
    with NodeDir.open(data).store() as store:
        n, problems = store.verify_log()
    if problems:
        table(f"{len(problems)} problem(s) in {n} change-sets", ["origin", "seq", "problem"],
              [[p.origin, p.seq, p.problem] for p in problems])
        sys.exit(1)
    console.print(f"ok: {n} change-sets verified")


@cli.command("digest")
@data_option
def digest(data: Path) -> None:
    """Print the view digest (sha256:<hex>) alone on one line."""
    with NodeDir.open(data).store() as store:
        click.echo(store.digest())


@cli.group("quarantine")
def quarantine() -> None:
    """What this node did not apply, and why."""


@quarantine.command("list")
@data_option
@json_option
def quarantine_list(data: Path, as_json: bool) -> None:
    """Quarantined change-sets, refused ops, parked change-sets and equivocation proofs, with reasons."""
    with NodeDir.open(data).store() as store:
        q, r, p, e = store.quarantined(), store.refused(), store.parked(), store.proofs()
    if as_json:
        print_json({"quarantined": q, "refused": r, "parked": p, "equivocations": e})
        return
    table(f"quarantined change-sets ({len(q)})", ["#", "received", "source", "size", "reason", "message"],
          [[x["n"], x["received_at"], x["source"], x["size"], x["reason"], x["message"]] for x in q])
    table(f"refused ops ({len(r)})", ["origin", "seq", "op", "key", "reason", "message"],
          [[x["origin"], x["seq"], f"{x['idx']}:{x['op']}", x["key"], x["reason"], x["message"]] for x in r])
    table(f"parked change-sets ({len(p)})", ["origin", "seq", "reason", "message"],
          [[x["origin"], x["seq"], x["reason"], x["message"]] for x in p])
    if e:
        table(f"EQUIVOCATIONS ({len(e)})", ["origin", "seq", "one id", "other id"],
              [[x["origin"], x["seq"], x["id_a"], x["id_b"]] for x in e])


@cli.command("run")
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The node's data folder (holds sync.toml, store.sqlite and keys/).")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Path of sync.toml, instead of --data.")
def run_cmd(data: Path | None, config: Path | None) -> None:
    """Run the node daemon: API server, MQTT push (if configured) and HTTP pull from peers."""
    from pocsync.node import daemon

    daemon.run(NodeDir.open(data, config=config))


@cli.command("recover")
@data_option
@click.option("--peer", required=True, metavar="URL", help="A peer node's URL to rebuild this node's log from.")
def recover_cmd(data: Path, peer: str) -> None:
    """Rebuild this node's store from a peer (after a lost or restored store) so it may sign again."""
    from pocsync.node.recover import recover

    res = recover(NodeDir.open(data), peer)
    console.print(f"recovered from {res['peer']}: {res['accepted']} change-set(s) accepted; own head seq "
                  f"{res['own_head_before']} → {res['own_head_after']}" + (" (new store)" if res["created"] else ""))
    if res["signing_blocked"]:
        err_console.print(f"[yellow]still must not sign[/]: {res['signing_blocked']}")
        sys.exit(1)


@cli.command("audit")
@data_option
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="How many rows, newest first.")
@json_option
def audit_cmd(data: Path, limit: int, as_json: bool) -> None:
    """The audit log: every directory read and every token issued (who, what, when, result)."""
    with NodeDir.open(data).store() as store:
        rows = store.audit_log(limit)
    if as_json:
        print_json(rows)
        return
    table(f"audit log ({len(rows)} newest)", ["when", "who", "action", "target", "result", "detail"],
          [[r["at"], r["actor"], r["action"], r["target"], r["result"], r["detail"]] for r in rows])


@cli.command("export")
@data_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "vcard"]), default="json", show_default=True,
              help="JSON document, CSV with the documented header, or vCard 4.0.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: stdout).")
def export_cmd(data: Path, fmt: str, out: Path | None) -> None:
    """Export the merged directory (for the secretariat's own PoC mailings); audited."""
    from pocsync import exports

    with NodeDir.open(data).store() as store:
        rows = store.entries()
        body = {"json": lambda: exports.to_json(rows), "csv": lambda: exports.to_csv(rows).encode(),
                "vcard": lambda: exports.to_vcard(rows).encode()}[fmt]()
        store.audit(actor=f"cli:{getpass.getuser()}", action=f"export.{fmt}", target="*", result="ok",
                    detail=f"{len(rows)} entries")
    if out is None:
        sys.stdout.buffer.write(body)
    else:
        out.write_bytes(body)
        err_console.print(f"wrote {len(rows)} entries to {out}")


@cli.command("demo")
@click.option("--mqtt", "mqtt_url", default="", metavar="URL",
              help="Use this broker (mqtt://host:port); without it the nodes sync over HTTP alone.")
@click.option("--duration", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Run the scenario this long, then stop everything; exit 0 only if the federation converged.")
@click.option("--keep", is_flag=True, help="Leave the federation running for exploring; Ctrl-C stops every process.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the demo's keys, stores and logs (default: a new temporary folder).")
def demo_cmd(mqtt_url: str, duration: float | None, keep: bool, directory: Path | None) -> None:
    """Run a whole federation here (un, eu, osce, arf) with an invented directory, shown live."""
    from pocsync.demo import run_demo

    sys.exit(run_demo(mqtt=mqtt_url, duration=duration, keep=keep, directory=directory))


def main() -> None:
    cli(prog_name="pocsync")


if __name__ == "__main__":
    main()
