"""``pocsync manifest …``: create, edit, sign, show and install the federation manifest."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiomqtt
import click
import pycountry

from pocsync.folder import keyfiles
from pocsync.cli.common import (
    console,
    data_option,
    err_console,
    looks_like_csv,
    print_json,
    read_input,
    read_text_arg,
    refuse_public_key,
    table,
)
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core import opkinds
from pocsync.core.keys import unb64
from pocsync.errors import KeyFileError, ManifestError, PocsyncError
from pocsync.folder.nodedir import NodeDir
from pocsync.transport.mqtt import MANIFEST as MANIFEST_TOPIC
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DAY = 86_400



def read_root_pub(path: Path) -> str:
    """A root public key file: one line of base64 (as ``keys root-init`` writes) or JSON {public}."""
    text = read_text_arg(path, "root public key")
    if "PRIVATE KEY" in text:
        raise KeyFileError(f"{path} is a private key: give the public key file (root.pub); "
                           "and keep the private key off shared machines", reason="private_key_given")
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        text = obj.get("public", "") if isinstance(obj, dict) and isinstance(obj.get("public"), str) else ""
    if len(unb64(text, what=f"root public key in {path}")) != 32:
        raise KeyFileError(f"{path} does not hold a root public key (one line of base64, as `pocsync keys root-init` "
                           "wrote root.pub)", reason="bad_key_file")
    return text


def read_json_object(path: Path, what: str, produced_by: str, *, advice: str | None = None) -> dict[str, Any]:
    """A JSON object from ``path``; a clear error for CSV, arrays, or anything else.  ``advice`` replaces
    "give the WHAT that PRODUCED_BY printed" for a file a person writes."""
    text = read_text_arg(path, what)
    try:
        obj = jsonc.loads(text.encode())
    except PocsyncError as exc:
        hint = " (it looks like CSV)" if looks_like_csv(text) else ""
        raise ManifestError(f"{path} is not JSON{hint}: {exc.message}; "
                            f"{advice or f'give the {what} that {produced_by} printed'}",
                            reason="bad_input_file") from None
    if not isinstance(obj, dict):
        kind = "a JSON array" if isinstance(obj, list) else f"a JSON {type(obj).__name__}"
        raise ManifestError(f"{path} holds {kind}, not one object: "
                            f"{advice or f'give the {what} of one node, as {produced_by} printed it'}",
                            reason="bad_input_file")
    return obj


def check_scope(text: str) -> list[str] | str:
    """``--scope``: 'all' or ISO 3166-1 alpha-3 codes of real countries (pycountry), naming any bad code."""
    try:
        scope = mf.parse_scope(text)
    except ManifestError:
        bad = [s.strip() for s in text.split(",") if s.strip() and not mf.STATE_RE.match(s.strip().upper())]
        raise click.BadParameter(f"{', '.join(map(repr, bad)) or repr(text)}: give 'all' or ISO 3166-1 alpha-3 "
                                 "codes separated by commas, e.g. AUT,BEL", param_hint="'--scope'") from None
    if scope != mf.ALL:
        unknown = [s for s in scope if pycountry.countries.get(alpha_3=s) is None]
        if unknown:
            raise click.BadParameter(f"{', '.join(unknown)} {'is not an' if len(unknown) == 1 else 'are not'} "
                                     f"ISO 3166-1 alpha-3 country code{'' if len(unknown) == 1 else 's'}",
                                     param_hint="'--scope'")
    return scope


def load(path: Path) -> mf.Manifest:
    try:
        return mf.parse(read_input(str(path)))
    except PocsyncError as exc:
        raise type(exc)(f"{path}: {exc.message}", reason=exc.reason) from None


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
        info = read_json_object(key_info, "key info", "`pocsync keys new-signing`")
        sk = info.get("signing_key", info)
        sk = sk if isinstance(sk, dict) else {}
        name, public = sk.get("name"), sk.get("public")
        if not isinstance(name, str) or not isinstance(public, str):
            raise ManifestError(f"{key_info} has no signing_key with a name and a public key", reason="bad_input_file")
    if not name or not public:
        raise click.UsageError("give --key-info FILE, or both --name and --public")
    return name, public


@click.group("manifest")
def manifest() -> None:
    """Create, edit, sign, show and install the federation manifest (the trust root)."""


def apply_policy(payload: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """``--policy FILE``: a JSON object ``{"<feature>": {…} | null}``; each member replaces (null: removes)
    that listed feature's federation policy (PROTOCOL.md §8.3), validated as every node validates it."""
    if path is None:
        return payload
    obj = read_json_object(path, "policy file", "", advice='give one JSON object of policies by feature, e.g. '
                           '{"freshness": {"confirm_days": 365, "verify_days": 180}}')
    for name, value in obj.items():
        if name not in (payload.get("features") or []):
            raise ManifestError(f"{path}: policy names feature {name!r}, which this version does not enable "
                                "(add it with --features)", reason="bad_input_file")
        if value is not None and not isinstance(value, dict):
            raise ManifestError(f"{path}: policy of {name!r} must be an object or null", reason="bad_input_file")
        payload = mf.set_policy(payload, name, value)
    return payload


POLICY_HELP = ('JSON file {"<feature>": {…} | null}: federation policy of listed features (null removes one), '
               'e.g. {"freshness": {"confirm_days": 365, "verify_days": 180, "networks": {"<network>": '
               '{"verify_days": 90}}}} (PROTOCOL.md §15.5).')


@manifest.command("create")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Manifest file to write.")
@click.option("--root-pub", "root_pubs", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              required=True, help="A root public key file (repeat for several roots).")
@click.option("--threshold", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many root signatures a version needs.")
@click.option("--expires-days", type=click.IntRange(min=1), default=365, show_default=True,
              help="Days until this version expires.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help=POLICY_HELP)
def create(out: Path, root_pubs: tuple[Path, ...], threshold: int, expires_days: int,
           policy_file: Path | None) -> None:
    """Start version 1 of a manifest with the given root keys and no nodes.

    The new manifest lists every feature this pocsync implements except the opt-in ones (held-changes),
    which a federation enables with `manifest set-features`."""
    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.new_payload([read_root_pub(p) for p in root_pubs], threshold=threshold,
                             expires_s=int(time.time()) + expires_days * DAY, features=DEFAULT_FEATURES)
    payload = apply_policy(payload, policy_file)
    save(out, mf.unsigned(payload))
    console.print(f"{out}: manifest v1 with {len(root_pubs)} root key(s), threshold {threshold}, features: "
                  f"{', '.join(DEFAULT_FEATURES) or 'none'} (unsigned)")


DEFAULT_FEATURES = sorted(set(opkinds.FEATURES) - opkinds.OPT_IN_FEATURES)


@manifest.command("set-features")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--features", default=None, metavar="NAME,NAME,…",
              help="The complete list of features the federation enables, comma-separated ('' for none); "
                   "omitted: unchanged (then give --policy). "
                   f"This pocsync implements: {', '.join(sorted(opkinds.FEATURES)) or 'none'}.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help=POLICY_HELP)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the new version here instead of replacing FILE.")
def set_features(file: Path, features: str | None, out: Path | None, policy_file: Path | None) -> None:
    """Enable exactly these features in a new version of FILE (unsigned).

    A signed FILE (a released version N) gives version N+1; an unsigned FILE (a draft of the next
    version, e.g. from `manifest next`) is edited as it is.  The result replaces FILE, or goes to --out.  Every node must run a pocsync
    that implements every listed feature: a node refuses to install a manifest naming a feature it
    lacks (check software.features in each node's /v1/health first).  Policy of a feature no longer
    listed is dropped.  --policy sets the federation policy of listed features (e.g. freshness periods)."""
    m = load(file)
    if features is None and policy_file is None:
        raise click.UsageError("give --features, --policy or both")
    names = sorted(m.features) if features is None else sorted({f.strip() for f in features.split(",") if f.strip()})
    unknown = opkinds.unsupported(frozenset(names))
    if unknown:
        raise click.BadParameter(f"this pocsync does not implement feature(s) {', '.join(unknown)}; it implements: "
                                 f"{', '.join(sorted(opkinds.FEATURES)) or 'none'}", param_hint="--features")
    if names == sorted(m.features) and policy_file is None:
        raise click.BadParameter(f"manifest v{m.version} already enables exactly these features",
                                 param_hint="--features")
    if out is not None and out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.set_features(mf.next_version(m.payload) if m.envelope.signatures else m.payload, names)
    payload = apply_policy(payload, policy_file)
    from pocsync.cli.held_cmd import on_enable  # held-changes: edits from now on are held, not the past (ADR 28)
    payload = on_enable(m, payload)
    file = out or file
    save(file, mf.unsigned(payload))
    console.print(f"{file}: manifest v{payload['version']} enables {', '.join(names) or 'no features'} (unsigned; "
                  f"sign it with a threshold of the roots of v{payload['version'] - 1} and v{payload['version']})")


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
    info = read_json_object(node_info, "node-info JSON", "`pocsync node-info`")
    for e in endpoints:
        name, _, url = e.partition("=")
        if not url:
            raise click.BadParameter(f"--endpoint {e!r} must be NAME=URL")
        info.setdefault("endpoints", {})[name] = url
    edit(file, mf.add_node(load(file).payload, info, role=role, scope=check_scope(scope),
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
    edit(file, mf.set_scope(load(file).payload, node_id, states=check_scope(scope), from_seq=from_seq))


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
        refuse_public_key(k)
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
    console.print(f"features: {', '.join(sorted(m.features)) or 'none'}"
                  + (f"  (this pocsync lacks: {', '.join(opkinds.unsupported(m.features))})"
                     if opkinds.unsupported(m.features) else ""), markup=False)
    for name, value in sorted(m.policy.items()):
        console.print(f"policy.{name}: {json.dumps(value, sort_keys=True)}", markup=False, highlight=False)
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
              help="CA certificate for mqtts:// (default: the system's trust store).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
              help="Seconds to wait for the broker to connect and acknowledge.")
def publish(file: Path, mqtt_url: str, username: str | None, password_file: Path | None, ca_file: Path | None,
            timeout: float) -> None:
    """Publish a signed manifest, retained, on pocsync/v1/manifest; nodes install it by the rotation rules.

    Nodes without a broker get new versions from their peers over HTTP instead.
    """
    m = load(file)
    if len(mf.signed_by(m, m.roots)) < m.threshold:
        raise ManifestError(f"manifest v{m.version} lacks its threshold of root signatures; sign it first",
                            reason="threshold_not_met")
    u = urlparse(mqtt_url)
    try:
        port = u.port
    except ValueError:
        port = -1
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname or port == -1:
        raise click.BadParameter("must be mqtt://host:port or mqtts://host:port", param_hint="'--mqtt'")
    user = username or u.username
    password = read_text_arg(password_file, "broker password") if password_file else None
    if password_file and not user:
        raise click.BadParameter("--password-file needs --username (or user@ in the URL)")
    port = port or (8883 if u.scheme == "mqtts" else 1883)
    tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if u.scheme == "mqtts" else None
    where = f"{u.scheme}://{u.hostname}:{port}"

    body = m.to_bytes()

    async def retained(client: aiomqtt.Client) -> mf.Manifest | None:
        """The manifest the broker retains (it sends it at once on subscribing), if any parses."""
        async def first() -> bytes | None:
            async for msg in client.messages:
                return bytes(msg.payload) if msg.retain and isinstance(msg.payload, (bytes, bytearray)) else None
            return None
        try:
            data = await asyncio.wait_for(first(), min(timeout, 2.0))
        except TimeoutError:
            return None  # nothing retained
        try:
            return mf.parse(data) if data else None
        except PocsyncError:
            return None  # not a manifest this tool reads: the publish replaces it

    async def go() -> bool:
        """Publish, then see it come back: a broker acknowledges a publish its ACL dropped just the same."""
        async with aiomqtt.Client(u.hostname or "", port, username=user, password=password, tls_context=tls,
                                  protocol=aiomqtt.ProtocolVersion.V5, timeout=timeout) as client:
            await client.subscribe(MANIFEST_TOPIC, qos=1, timeout=timeout)
            held = await retained(client)
            if held is not None and held.version > m.version:
                raise ManifestError(f"{where} holds manifest v{held.version} (retained); publishing v{m.version} "
                                    "would replace it with an older version, so nothing was published",
                                    reason="older_than_retained")
            await client.publish(MANIFEST_TOPIC, body, qos=1, retain=True, timeout=timeout)

            async def echoed() -> None:
                async for msg in client.messages:
                    if msg.payload == body:
                        return

            try:
                await asyncio.wait_for(echoed(), timeout)
            except TimeoutError:
                return False
            return True

    try:
        seen = asyncio.run(asyncio.wait_for(go(), timeout * 3))
    except aiomqtt.MqttCodeError as exc:
        raise PocsyncError(f"{where} refused: {exc} (check --username and --password-file, and the ACL for "
                           f"{MANIFEST_TOPIC})", reason="broker_refused") from None
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        causes = [exc]
        while causes[-1].__cause__ or causes[-1].__context__:
            causes.append(causes[-1].__cause__ or causes[-1].__context__)  # type: ignore[arg-type]
        tls_failed = any(isinstance(c, ssl.SSLError) for c in causes) or (
            tls is not None and any(isinstance(c, (ConnectionResetError, ConnectionAbortedError)) for c in causes))
        if tls_failed:
            raise PocsyncError(f"TLS with {where} failed ({exc or type(exc).__name__}): is it a TLS port, and is its "
                               "certificate signed by the CA given (--ca-file)?", reason="broker_tls_error") from None
        detail = str(exc) or ("no answer within the timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
        raise PocsyncError(f"cannot publish to {where}: {detail}", reason="broker_unreachable") from None
    if not seen:
        raise PocsyncError(f"{where} did not pass manifest v{m.version} on {MANIFEST_TOPIC} back within {timeout:g} s: "
                           f"the account {user or '(anonymous)'} may not publish or read that topic (see "
                           "deploy/mosquitto/acl)", reason="not_published")
    console.print(f"published manifest v{m.version} on {MANIFEST_TOPIC} (retained), and the broker passed it on")
