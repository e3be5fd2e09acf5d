"""``pocsync manifest sign|show|install|publish``: sign a manifest, show it, install it at a node, and
publish it on the broker.  The commands that make new versions are in manifest_edit.py."""

from __future__ import annotations

import json
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.cli.common import console, data_option, err_console, print_json, read_text_arg, refuse_public_key, table
from pocsync.cli.manifest_io import load, save
from pocsync.core import manifest as mf
from pocsync.core import opkinds
from pocsync.errors import ConfigError, ManifestError, PocsyncError
from pocsync.folder import keyfiles
from pocsync.folder.nodedir import NodeDir


@click.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    required=True,
    help="A root private key (repeat to reach the threshold).",
)
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File holding the passphrase of encrypted root keys.",
)
def sign(file: Path, keys: tuple[Path, ...], passphrase_file: Path | None) -> None:
    """Add root signatures to FILE.  Keys of the previous version's roots may sign too (rotation)."""
    m = load(file)
    pw = keyfiles.read_passphrase(passphrase_file)
    for k in keys:
        refuse_public_key(k)
        key = keyfiles.read_private(k, Ed25519PrivateKey, passphrase=pw)  # type: ignore[type-abstract]
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


@click.command("show")
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
    console.print(
        f"features: {', '.join(sorted(m.features)) or 'none'}"
        + (
            f"  (this pocsync lacks: {', '.join(opkinds.unsupported(m.features))})"
            if opkinds.unsupported(m.features)
            else ""
        ),
        markup=False,
    )
    for name, value in sorted(m.policy.items()):
        console.print(f"policy.{name}: {json.dumps(value, sort_keys=True)}", markup=False, highlight=False)
    console.print(
        f"expires {mf.format_time(m.expires)}; threshold {m.threshold} of {len(m.roots)} roots; "
        f"{len(good)} valid own-root signature(s) ({'enough' if len(good) >= m.threshold else 'NOT enough'})"
    )
    rows = []
    for nid, n in sorted(m.nodes.items()):
        scope = n.scope[-1].states if n.scope else frozenset()
        rows.append(
            [
                nid,
                n.role,
                n.organisation,
                "all" if scope is None else ",".join(sorted(scope)),
                "; ".join(f"{k.name} {k.from_seq}–{k.until_seq or ''}" for k in n.signing_keys),
                ", ".join(f"@{r.seq}" for r in n.restarts),
                "" if n.removed_at_seq is None else f"after seq {n.removed_at_seq}",
            ]
        )
    table(
        "nodes", ["node", "role", "organisation", "scope (latest)", "signing keys (seqs)", "restarts", "removed"], rows
    )


@click.command("install")
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
    console.print(
        f"installed manifest v{m.version}; re-evaluated {len(outs)} change-set(s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if outs
        else f"installed manifest v{m.version}"
    )
    if nd.node_id not in m.nodes:
        err_console.print(f"warning: this node ({nd.node_id}) is not in manifest v{m.version}; it cannot sign")


@click.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mqtt", "mqtt_url", required=True, metavar="URL", help="Broker, mqtt://host:port or mqtts://host:port.")
@click.option("--username", default=None, help="Broker account allowed to publish the manifest (the operator's).")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File holding that account's password.",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate for mqtts:// (default: the system's trust store).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds to wait for the broker to connect and acknowledge.",
)
def publish(
    file: Path, mqtt_url: str, username: str | None, password_file: Path | None, ca_file: Path | None, timeout: float
) -> None:
    """Publish a signed manifest, retained, on pocsync/v1/manifest; nodes install it by the rotation rules.

    Nodes without a broker get new versions from their peers over HTTP instead.
    """
    import asyncio

    from pocsync.transport import publish as mqtt_publish

    m = load(file)
    if len(mf.signed_by(m, m.roots)) < m.threshold:
        raise ManifestError(
            f"manifest v{m.version} lacks its threshold of root signatures; sign it first", reason="threshold_not_met"
        )
    password = read_text_arg(password_file, "broker password") if password_file else None
    try:
        b = mqtt_publish.broker(mqtt_url, username=username, password=password, ca_file=ca_file)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="'--mqtt'") from None
    if password_file and not b.username:
        raise click.BadParameter("--password-file needs --username (or user@ in the URL)")
    topic = mqtt_publish.MANIFEST

    def not_older(retained: bytes | None) -> None:
        held = _manifest_or_none(retained)
        if held is not None and held.version > m.version:
            raise ManifestError(
                f"{b.where} holds manifest v{held.version} (retained); publishing v{m.version} "
                "would replace it with an older version, so nothing was published",
                reason="older_than_retained",
            )

    try:
        seen = asyncio.run(
            mqtt_publish.publish_retained(b, topic, m.to_bytes(), timeout=timeout, check_retained=not_older)
        )
    except PocsyncError as exc:
        hint = PUBLISH_HINTS.get(exc.reason or "")
        if hint is None:
            raise
        raise PocsyncError(exc.message + hint.format(topic=topic), reason=exc.reason) from None
    if not seen:
        raise PocsyncError(
            f"{b.where} did not pass manifest v{m.version} on {topic} back within {timeout:g} s: "
            f"the account {b.username or '(anonymous)'} may not publish or read that topic (see "
            "deploy/mosquitto/acl)",
            reason="not_published",
        )
    console.print(f"published manifest v{m.version} on {topic} (retained), and the broker passed it on")


#: what to check, by the reason of a failed publish
PUBLISH_HINTS = {
    "broker_refused": " (check --username and --password-file, and the ACL for {topic})",
    "broker_tls_error": " (--ca-file)",
}


def _manifest_or_none(data: bytes | None) -> mf.Manifest | None:
    """The manifest the broker retains, if any parses (anything else is replaced by the publish)."""
    try:
        return mf.parse(data) if data else None
    except PocsyncError:
        return None
