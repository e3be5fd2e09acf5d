"""Entry point of the ``pocsync`` command."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.markup import escape
from rich.progress import Progress

from pocsync import __version__
from pocsync.directory import intake
from pocsync.folder import keyfiles
from pocsync.cli.bench_cmd import bench_cmd
from pocsync.cli.common import (
    no_peer_check_option,
    peer_check,
    PocsyncGroup,
    console,
    data_option,
    err_console,
    json_option,
    looks_like_csv,
    print_json,
    read_input,
    table,
)
from pocsync.cli import campaign_cmd, check_cmd, import_cmd
from pocsync.cli.history_cmd import history
from pocsync.cli.manifest_cmd import manifest
from pocsync.cli.snapshot_cmd import snapshot
from pocsync.cli.status_cmd import status
from pocsync.cli.template_cmd import template
from pocsync.cli.token_cmd import token
from pocsync.core import jsonc, model
from pocsync.core.keys import ed25519_public_b64, root_keyid
from pocsync.core.outcome import Status
from pocsync.core.tally import Tally
from pocsync.errors import EntryError, MalformedJSON, PocsyncError
from pocsync.folder.nodedir import NodeDir
from pocsync.store.sqlite import now_ms

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
cli.add_command(snapshot)
cli.add_command(history)
cli.add_command(token)
cli.add_command(import_cmd.export_cmd)
cli.add_command(import_cmd.adapters_cmd)
cli.add_command(bench_cmd)
cli.add_command(template)
cli.add_command(check_cmd.check)
campaign_cmd.register(check_cmd.check)


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
    keyfiles.private_dir(out)  # 0700 whatever the umask (issue 11, case 12)
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
              help="Where the node's HTTP API listens (peer sync, directory, health); 0.0.0.0:PORT for every "
                   "interface (then --public-url is required).")
@click.option("--public-url", default="", metavar="URL",
              help="The URL other nodes and PoCs reach this node at, e.g. https://eu.example.org:8443 "
                   "(default: built from --listen; required when --listen is a wildcard address).")
@click.option("--tls-cert", default="", metavar="FILE", help="TLS certificate chain (PEM) the API serves.")
@click.option("--tls-key", default="", metavar="FILE", help="Private key (PEM) of --tls-cert.")
@click.option("--behind-tls-proxy", is_flag=True,
              help="A TLS-terminating proxy sits in front: serve plain HTTP off loopback anyway.")
@click.option("--peer-ca", "peer_ca", default="", metavar="FILE",
              help="CA certificate(s) that peers' HTTPS certificates chain to (default: the system's trust store).")
@click.option("--mqtt", "mqtt_url", default="", metavar="URL",
              help="Broker, mqtt://[user@]host:port or mqtts://…; none: sync over HTTP pull alone.")
@click.option("--mqtt-password-file", default="", metavar="FILE", help="File holding the broker password.")
@click.option("--peer", "peers", multiple=True, metavar="URL",
              help="A peer node's URL to pull from (repeatable); the manifest's endpoints are pulled from too.")
def init(node_id: str, data: Path, organisation: str, listen: str, public_url: str, tls_cert: str, tls_key: str,
         behind_tls_proxy: bool, peer_ca: str, mqtt_url: str, mqtt_password_file: str, peers: tuple[str, ...]) -> None:
    """Create a node: its keys (mode 0600), its store and DATA/sync.toml."""
    if mqtt_url and not mqtt_url.startswith(("mqtt://", "mqtts://")):
        raise click.BadParameter("must start with mqtt:// or mqtts://", param_hint="'--mqtt'")
    if mqtt_password_file and not Path(mqtt_password_file).is_file():
        raise click.BadParameter(f"{mqtt_password_file}: no such file", param_hint="'--mqtt-password-file'")
    nd = NodeDir.init(data, node_id=node_id, organisation=organisation, listen=listen, mqtt_url=mqtt_url,
                      mqtt_password_file=mqtt_password_file, peers=peers, public_url=public_url, tls_cert=tls_cert,
                      tls_key=tls_key, behind_tls_proxy=behind_tls_proxy, peer_ca_file=peer_ca)
    console.print(f"node {node_id} created in {data}, reachable at {nd.config.api.public_url}. "
                  f"Next: `pocsync node-info --data {data}` for the manifest.")


@cli.command("node-info")
@data_option
@click.option("--key", "key_name", default=None, help="Signing key name to describe (default: the newest).")
def node_info(data: Path, key_name: str | None) -> None:
    """Print the node's public keys and URL as JSON, for `manifest add-node --node-info`.

    Refuses when the node's public URL (sync.toml [api] public_url) is one other nodes cannot use.
    """
    print_json(NodeDir.open(data).node_info(key_name=key_name))


# --- entries ---------------------------------------------------------------------------
@cli.group("entry")
def entry() -> None:
    """Edit and read this node's entries.  Each edit is one signed change-set."""


def _author(author: str | None, nd: NodeDir) -> str:
    return author or f"{getpass.getuser()}@{nd.node_id}"


def _edit(nd: NodeDir, ops: list[dict], author: str, *, labels: list[str] | None = None) -> None:
    """Sign and commit ``ops`` as one change-set, or commit nothing.

    The store refuses, before signing, every op a peer would refuse (scope at the next seq, structure,
    kind): each refusal is printed against its record (``labels``) and nothing is committed.
    """
    try:
        with nd.store() as store:
            peer_check(nd, store)
            key = nd.key_for_next_edit(store)
            out = store.edit(ops, key=key, author=author)
    except EntryError as exc:
        refusals = exc.detail.get("refusals")
        if not refusals:
            raise
        if len(ops) == 1:
            r = refusals[0]
            raise EntryError(f"{r['op']} {r['key']}: {r['message']}; every peer would refuse it, so nothing was "
                             "committed", reason=exc.reason) from None
        for r in refusals:
            where = labels[r["index"]] if labels and r["index"] < len(labels) else f"op {r['index']}"
            err_console.print("[red]refused[/] " + escape(f"{where} ({r['op']} {r['key']}): {r['reason']}: "
                                                          f"{r['message']}"), highlight=False)
        raise EntryError(f"{len(refusals)} of {len(ops)} {'record' if labels else 'op'}(s) break rules every peer applies "
                         f"({refusals[0]['message']}); nothing was committed", reason=exc.reason) from None
    console.print(f"committed change-set {nd.node_id} seq {out.seq} ({out.cs_id}) with {len(ops)} op(s)")
    held_cmd.note_held(nd, out.cs_id)  # held contact changes: say so, and when they take effect (issue 16)
    for r in out.refused:
        err_console.print("[yellow]refused[/] " + escape(f"op {r.index} on {r.key}: {r.reason}: {r.message}"))
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
                    err_console.print("[yellow]warning[/] " + escape(f"record {i} ({intake.entry_key(clean)}): "
                                                                     f"{w['field']}: {w['message']}"), highlight=False)
                ops.append({"op": "put", "key": intake.entry_key(clean), "entry": clean})
            progress.advance(task)
    if problems:
        for exc in problems:
            err_console.print("[red]invalid[/] " + escape(exc.message), highlight=False)
        raise EntryError(f"{len(problems)} of {len(records)} record(s) invalid; nothing was committed")
    keys_seen = [o["key"] for o in ops]
    dups = sorted({k for k in keys_seen if keys_seen.count(k) > 1})
    if dups:
        raise EntryError(f"the input lists {', '.join(dups)} more than once; nothing was committed")
    _edit(nd, ops, author, labels=[f"record {i}" for i in range(1, len(ops) + 1)])


@entry.command("put")
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
            raise EntryError(f"{src} looks like CSV, not JSON: import it with `pocsync entry import --data {data} "
                             f"{src} --adapter csv`", reason="csv_given_to_put") from None
        raise EntryError(f"{src}: {exc.message}", reason=exc.reason) from None
    _put_records(nd, parsed if isinstance(parsed, list) else [parsed], src, _author(author, nd))


entry.add_command(import_cmd.entry_import)
entry.add_command(check_cmd.entry_confirm)
entry.add_command(check_cmd.entry_overdue)


@entry.command("delete")
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
    if not peers_refuse and (not own or own[0]["op"] != "put"):  # a rule peers apply is named first (by _edit)
        raise EntryError(f"{nd.node_id} does not list {key}: nothing to delete, so nothing was committed "
                         f"(`pocsync entry list --data {data}` shows what is listed; a State's withdrawal of a "
                         "PoC listed elsewhere is `entry withdraw`)", reason="not_listed")
    _edit(nd, ops, _author(author, nd))


@entry.command("withdraw")
@data_option
@no_peer_check_option
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
    """One entry with its provenance (every origin's latest version) and its last_modified, last_verified and
    last_confirmed; all entries without KEY."""
    with NodeDir.open(data).store() as store:
        if key is None:
            print_json(store.entries())
            return
        row = store.entry(key)
        if row is not None:  # last_modified, last_verified, last_confirmed, per-channel verification (§15)
            row.update(check_cmd.freshness.by_key(store, now_ms=now_ms(), key=key).get(key, {}))
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
    tally = Tally()  # counts by each change-set's last outcome: never a negative count
    nd = NodeDir.open(data)
    with nd.store() as store, Progress(console=err_console, transient=True, disable=len(lines) < 200) as progress:
        task = progress.add_task("importing", total=len(lines))
        for start in range(0, len(lines), IMPORT_BATCH):
            with store.transaction():
                for line in lines[start:start + IMPORT_BATCH]:
                    tally.add(store.receive(line, source="import"))
                    progress.advance(task)
        for out in store.retry_parked(reason="clock_skew"):
            tally.add(out)
    counts, refused, shown = tally.counts(), tally.refused, tally.not_applied()
    table("import", [*map(str, Status), "refused ops"], [[*(counts[s] for s in Status), len(refused)]])
    if shown:
        table("not applied", ["status", "origin", "seq", "reason", "message"],
              [[o.status, o.origin, o.seq, o.reason, o.message] for o in shown])
    if refused:
        table("refused ops", ["origin", "seq", "op", "key", "reason", "message"],
              [[r.origin, r.seq, f"{r.index}:{r.op}", r.key, r.reason, r.message] for r in refused])
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
        print_json({"verified": n, "problems": [{"origin": p.origin, "seq": p.seq, "problem": p.problem}
                                                for p in problems]})
    elif problems:
        table(f"{len(problems)} problem(s) in {n} change-sets", ["origin", "seq", "problem"],
              [[p.origin, p.seq, p.problem] for p in problems])
    else:
        console.print(f"ok: {n} change-sets verified")
    if problems:
        sys.exit(1)


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
    import aiohttp

    from pocsync.folder.config import public_url_problem
    from pocsync.node.recover import recover

    problem = public_url_problem(peer)
    if problem:
        raise click.BadParameter(problem, param_hint="'--peer'")
    nd = NodeDir.open(data)
    try:
        res = recover(nd, peer)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise PocsyncError(f"cannot recover from {peer}: {exc or type(exc).__name__}", reason="unreachable") from None
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
    from pocsync.demo.run import run_demo

    sys.exit(run_demo(mqtt=mqtt_url, duration=duration, keep=keep, directory=directory))


from pocsync.cli import held_cmd  # noqa: E402 — held contact changes (issue 16)

held_cmd.register(entry, manifest, keys)


def main() -> None:
    cli(prog_name="pocsync")


if __name__ == "__main__":
    main()
