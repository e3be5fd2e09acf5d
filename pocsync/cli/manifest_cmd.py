"""``pocsync manifest …``: create, edit, sign, show and install the federation manifest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from pocsync import keyfiles
from pocsync.cli.common import console, data_option, err_console, print_json, table
from pocsync.core import manifest as mf
from pocsync.core.keys import unb64
from pocsync.errors import ManifestError
from pocsync.nodedir import NodeDir
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DAY = 86_400


def read_root_pub(path: Path) -> str:
    """A root public key file: one line of base64 (as ``keys root-init`` writes) or JSON {public}."""
    text = path.read_text().strip()
    if text.startswith("{"):
        text = json.loads(text).get("public", "")
    unb64(text, what=f"root public key in {path}")
    return text


def load(path: Path) -> mf.Manifest:
    try:
        return mf.parse(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"manifest file {path} not found") from None


def save(path: Path, m: mf.Manifest) -> None:
    path.write_text(json.dumps(m.envelope.to_json(), indent=2) + "\n")


def edit(path: Path, payload: dict[str, Any]) -> None:
    old = load(path)
    new = mf.unsigned(payload)
    save(path, new)
    if old.envelope.signatures:
        err_console.print(f"note: the edit removed {len(old.envelope.signatures)} signature(s); sign v{new.version} again. "
                          f"If signed v{new.version} was already installed or published anywhere, nodes will refuse "
                          f"this one as not newer: edit a copy made with `pocsync manifest next` instead",
                          highlight=False, markup=False)
    console.print(f"{path}: manifest v{new.version} (unsigned)")


def key_args(key_info: Path | None, name: str | None, public: str | None) -> tuple[str, str]:
    if key_info is not None:
        info = json.loads(key_info.read_text())
        sk = info.get("signing_key", info)
        name, public = sk.get("name"), sk.get("public")
    if not name or not public:
        raise click.UsageError("give --key-info FILE, or both --name and --public")
    return name, public


@click.group("manifest")
def manifest() -> None:
    """Create, edit, sign, show and install the federation manifest (the trust root)."""


@manifest.command("create")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Manifest file to write.")
@click.option("--root-pub", "root_pubs", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              required=True, help="A root public key file (repeat for several roots).")
@click.option("--threshold", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many root signatures a version needs.")
@click.option("--expires-days", type=click.IntRange(min=1), default=365, show_default=True,
              help="Days until this version expires.")
def create(out: Path, root_pubs: tuple[Path, ...], threshold: int, expires_days: int) -> None:
    """Start version 1 of a manifest with the given root keys and no nodes."""
    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.new_payload([read_root_pub(p) for p in root_pubs], threshold=threshold,
                             expires_s=int(time.time()) + expires_days * DAY)
    save(out, mf.unsigned(payload))
    console.print(f"{out}: manifest v1 with {len(root_pubs)} root key(s), threshold {threshold} (unsigned)")


@manifest.command("add-node")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--node-info", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSON printed by `pocsync node-info` on the node.")
@click.option("--role", type=click.Choice(mf.ROLES), required=True, help="regional or un.")
@click.option("--scope", required=True, help="States the node may speak for: ISO3,ISO3,… or 'all'.")
@click.option("--organisation", default=None, help="Organisation name (defaults to the node-info's).")
@click.option("--endpoint", "endpoints", multiple=True, metavar="NAME=URL",
              help="An endpoint of the node, e.g. http=https://eu.example.org:8443 (repeatable).")
def add_node(file: Path, node_info: Path, role: str, scope: str, organisation: str | None,
             endpoints: tuple[str, ...]) -> None:
    """Add a member node from its node-info JSON."""
    info = json.loads(node_info.read_text())
    for e in endpoints:
        name, _, url = e.partition("=")
        if not url:
            raise click.BadParameter(f"--endpoint {e!r} must be NAME=URL")
        info.setdefault("endpoints", {})[name] = url
    edit(file, mf.add_node(load(file).payload, info, role=role, scope=mf.parse_scope(scope),
                           organisation=organisation))


@manifest.command("next")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write N+1.")
@click.option("--expires-days", type=click.IntRange(min=1), default=None, help="New expiry, in days from now.")
def next_(file: Path, out: Path, expires_days: int | None) -> None:
    """Write version N+1 (unsigned) to edit, starting from FILE (version N)."""
    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.next_version(load(file).payload)
    if expires_days:
        payload = mf.set_expiry(payload, int(time.time()) + expires_days * DAY)
    save(out, mf.unsigned(payload))
    console.print(f"{out}: manifest v{payload['version']} (unsigned)")


def _key_options(f: Any) -> Any:
    f = click.option("--public", default=None, help="Base64 Ed25519 public key of the new key.")(f)
    f = click.option("--name", default=None, help="Name of the new key (as in keys/signing-NAME.key).")(f)
    f = click.option("--key-info", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="JSON from `pocsync keys new-signing` or `node-info`.")(f)
    return f


node_option = click.option("--node", "node_id", required=True, help="Node id.")
from_seq_option = click.option("--from-seq", type=click.IntRange(min=1), required=True,
                               help="First seq of the node's log the change applies to.")


@manifest.command("rotate-key")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
@_key_options
def rotate_key(file: Path, node_id: str, from_seq: int, key_info: Path | None, name: str | None,
               public: str | None) -> None:
    """Give NODE a new signing key from seq S; its older keys stop at S-1 (retroactive if S is past)."""
    name, public = key_args(key_info, name, public)
    edit(file, mf.rotate_key(load(file).payload, node_id, name=name, public=public, from_seq=from_seq))


@manifest.command("set-scope")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
@click.option("--scope", required=True, help="ISO3,ISO3,… or 'all'.")
def set_scope(file: Path, node_id: str, from_seq: int, scope: str) -> None:
    """Change the States NODE may speak for, from seq S of its log."""
    edit(file, mf.set_scope(load(file).payload, node_id, states=mf.parse_scope(scope), from_seq=from_seq))


@manifest.command("remove-node")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
def remove_node(file: Path, node_id: str, from_seq: int) -> None:
    """Remove NODE: its change-sets from seq S on have no validity; nothing is sealed for it again."""
    edit(file, mf.remove_node(load(file).payload, node_id, at_seq=from_seq - 1))


@manifest.command("restart-chain")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
@_key_options
@click.option("--prev", default=None, help="Checkpoint (sha256:…) the new segment links to; omit for prev null.")
def restart_chain(file: Path, node_id: str, from_seq: int, key_info: Path | None, name: str | None,
                  public: str | None, prev: str | None) -> None:
    """Declare a chain restart of NODE at seq S with a new key (lost log, or after an equivocation)."""
    name, public = key_args(key_info, name, public)
    edit(file, mf.restart_chain(load(file).payload, node_id, name=name, public=public, from_seq=from_seq, prev=prev))


@manifest.command("add-root")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root-pub", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Root public key file to add.")
def add_root(file: Path, root_pub: Path) -> None:
    """Add a root key."""
    edit(file, mf.add_root(load(file).payload, read_root_pub(root_pub)))


@manifest.command("remove-root")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root-pub", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Root public key file to remove.")
@click.option("--keyid", default=None, help="Or the root's keyid (root:…).")
def remove_root(file: Path, root_pub: Path | None, keyid: str | None) -> None:
    """Remove a root key."""
    target = keyid or (read_root_pub(root_pub) if root_pub else None)
    if not target:
        raise click.UsageError("give --root-pub FILE or --keyid")
    edit(file, mf.remove_root(load(file).payload, target))


@manifest.command("set-threshold")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--threshold", type=click.IntRange(min=1), required=True, help="Root signatures needed.")
def set_threshold(file: Path, threshold: int) -> None:
    """Change how many root signatures a version needs."""
    edit(file, mf.set_threshold(load(file).payload, threshold))


@manifest.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "keys", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              required=True, help="A root private key (repeat to reach the threshold).")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the passphrase of encrypted root keys.")
def sign(file: Path, keys: tuple[Path, ...], passphrase_file: Path | None) -> None:
    """Add root signatures to FILE.  Keys of the previous version's roots may sign too (rotation)."""
    m = load(file)
    pw = keyfiles.read_passphrase(passphrase_file)
    for k in keys:
        key = keyfiles.read_private(k, Ed25519PrivateKey, passphrase=pw)
        try:
            m = mf.sign(m, key)
        except ManifestError as exc:
            if exc.reason != "not_a_root":
                raise
            m = mf.sign_as_previous_root(m, key)
            err_console.print(f"note: {k} is not a root of v{m.version}; signed as a previous version's root")
    save(file, m)
    good = len(mf.signed_by(m, m.roots))
    console.print(f"{file}: v{m.version} has {good} of {m.threshold} needed signature(s) by its own roots")


@manifest.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the payload as JSON.")
def show(file: Path, as_json: bool) -> None:
    """Show a manifest: version, expiry, roots, signatures and nodes."""
    m = load(file)
    if as_json:
        print_json(m.payload)
        return
    good = mf.signed_by(m, m.roots)
    console.print(f"[bold]manifest v{m.version}[/]  id {m.id}")
    console.print(f"expires {mf.format_time(m.expires)}; threshold {m.threshold} of {len(m.roots)} roots; "
                  f"{len(good)} valid own-root signature(s) ({'enough' if len(good) >= m.threshold else 'NOT enough'})")
    rows = []
    for nid, n in sorted(m.nodes.items()):
        scope = n.scope[-1].states if n.scope else frozenset()
        rows.append([nid, n.role, n.organisation,
                     "all" if scope is None else ",".join(sorted(scope)),
                     "; ".join(f"{k.name} {k.from_seq}–{k.until_seq or ''}" for k in n.signing_keys),
                     ", ".join(f"@{r.seq}" for r in n.restarts),
                     "" if n.removed_at_seq is None else f"after seq {n.removed_at_seq}"])
    table("nodes", ["node", "role", "organisation", "scope (latest)", "signing keys (seqs)", "restarts",
                    "removed"], rows)


@manifest.command("install")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def install(data: Path, file: Path) -> None:
    """Install FILE at the node: refuses unsigned, under-threshold, expired, skipped and rolled-back versions."""
    m = load(file)
    nd = NodeDir.open(data)
    with nd.store() as store:
        outs = store.install_manifest(m)
    counts: dict[str, int] = {}
    for o in outs:
        counts[o.status] = counts.get(o.status, 0) + 1
    console.print(f"installed manifest v{m.version}; re-evaluated {len(outs)} change-set(s): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) if outs else
                  f"installed manifest v{m.version}")
    if nd.node_id not in m.nodes:
        err_console.print(f"warning: this node ({nd.node_id}) is not in manifest v{m.version}; it cannot sign")




@manifest.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mqtt", "mqtt_url", required=True, metavar="URL", help="Broker, mqtt://host:port or mqtts://host:port.")
@click.option("--username", default=None, help="Broker account allowed to publish the manifest (the operator's).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding that account's password.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CA certificate for mqtts://.")
def publish(file: Path, mqtt_url: str, username: str | None, password_file: Path | None, ca_file: Path | None) -> None:
    """Publish a signed manifest, retained, on pocsync/v1/manifest; nodes install it by the rotation rules."""
    from urllib.parse import urlparse

    import paho.mqtt.publish as mqtt_publish
    from paho.mqtt.client import MQTTv5

    m = load(file)
    if len(mf.signed_by(m, m.roots)) < m.threshold:
        raise ManifestError(f"manifest v{m.version} lacks its threshold of root signatures; sign it first",
                            reason="threshold_not_met")
    u = urlparse(mqtt_url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise click.BadParameter("--mqtt must be mqtt://host:port or mqtts://host:port")
    auth = {"username": username or u.username, "password": password_file.read_text().strip()} \
        if (username or u.username) and password_file else None
    tls = {"ca_certs": str(ca_file)} if u.scheme == "mqtts" and ca_file else ({} if u.scheme == "mqtts" else None)
    mqtt_publish.single("pocsync/v1/manifest", m.to_bytes(), qos=1, retain=True, hostname=u.hostname,
                        port=u.port or (8883 if u.scheme == "mqtts" else 1883), auth=auth, tls=tls,
                        protocol=MQTTv5, client_id="")
    console.print(f"published manifest v{m.version} on pocsync/v1/manifest (retained)")
