"""``pocsync manifest create|set-features|next|add-node|…``: new versions of the manifest, unsigned.

Signing, showing, installing and publishing are in manifest_cmd.py; the ``manifest`` group lists both
(registry.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import pycountry

from pocsync.cli.common import console
from pocsync.cli.held_cmd import on_enable
from pocsync.cli.manifest_io import edit, load, read_json_object, read_root_pub, save
from pocsync.core import manifest as mf
from pocsync.core import opkinds
from pocsync.errors import ManifestError

DAY = 86_400


def check_scope(text: str) -> list[str] | str:
    """``--scope``: 'all' or ISO 3166-1 alpha-3 codes of real countries (pycountry), naming any bad code."""
    try:
        scope = mf.parse_scope(text)
    except ManifestError:
        bad = [s.strip() for s in text.split(",") if s.strip() and not mf.STATE_RE.match(s.strip().upper())]
        raise click.BadParameter(
            f"{', '.join(map(repr, bad)) or repr(text)}: give 'all' or ISO 3166-1 alpha-3 "
            "codes separated by commas, e.g. AUT,BEL",
            param_hint="'--scope'",
        ) from None
    if scope != mf.ALL:
        unknown = [s for s in scope if pycountry.countries.get(alpha_3=s) is None]
        if unknown:
            raise click.BadParameter(
                f"{', '.join(unknown)} {'is not an' if len(unknown) == 1 else 'are not'} "
                f"ISO 3166-1 alpha-3 country code{'' if len(unknown) == 1 else 's'}",
                param_hint="'--scope'",
            )
    return scope


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


def apply_policy(payload: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """``--policy FILE``: a JSON object ``{"<feature>": {…} | null}``; each member replaces (null: removes)
    that listed feature's federation policy (PROTOCOL.md §8.3), validated as every node validates it."""
    if path is None:
        return payload
    obj = read_json_object(
        path,
        "policy file",
        "",
        advice="give one JSON object of policies by feature, e.g. "
        '{"freshness": {"confirm_days": 365, "verify_days": 180}}',
    )
    for name, value in obj.items():
        if name not in (payload.get("features") or []):
            raise ManifestError(
                f"{path}: policy names feature {name!r}, which this version does not enable (add it with --features)",
                reason="bad_input_file",
            )
        if value is not None and not isinstance(value, dict):
            raise ManifestError(f"{path}: policy of {name!r} must be an object or null", reason="bad_input_file")
        payload = mf.set_policy(payload, name, value)
    return payload


POLICY_HELP = (
    'JSON file {"<feature>": {…} | null}: federation policy of listed features (null removes one), '
    'e.g. {"freshness": {"confirm_days": 365, "verify_days": 180, "networks": {"<network>": '
    '{"verify_days": 90}}}} (PROTOCOL.md §15.5).'
)


@click.command("create")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Manifest file to write.")
@click.option(
    "--root-pub",
    "root_pubs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    required=True,
    help="A root public key file (repeat for several roots).",
)
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many root signatures a version needs.",
)
@click.option(
    "--expires-days",
    type=click.IntRange(min=1),
    default=365,
    show_default=True,
    help="Days until this version expires.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=POLICY_HELP,
)
def create(out: Path, root_pubs: tuple[Path, ...], threshold: int, expires_days: int, policy_file: Path | None) -> None:
    """Start version 1 of a manifest with the given root keys and no nodes.

    The new manifest lists every feature this pocsync implements except the opt-in ones (held-changes),
    which a federation enables with `manifest set-features`."""
    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.new_payload(
        [read_root_pub(p) for p in root_pubs],
        threshold=threshold,
        expires_s=int(time.time()) + expires_days * DAY,
        features=DEFAULT_FEATURES,
    )
    payload = apply_policy(payload, policy_file)
    save(out, mf.unsigned(payload))
    console.print(
        f"{out}: manifest v1 with {len(root_pubs)} root key(s), threshold {threshold}, features: "
        f"{', '.join(DEFAULT_FEATURES) or 'none'} (unsigned)"
    )


DEFAULT_FEATURES = sorted(set(opkinds.FEATURES) - opkinds.OPT_IN_FEATURES)


@click.command("set-features")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--features",
    default=None,
    metavar="NAME,NAME,…",
    help="The complete list of features the federation enables, comma-separated ('' for none); "
    "omitted: unchanged (then give --policy). "
    f"This pocsync implements: {', '.join(sorted(opkinds.FEATURES)) or 'none'}.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=POLICY_HELP,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the new version here instead of replacing FILE.",
)
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
        raise click.BadParameter(
            f"this pocsync does not implement feature(s) {', '.join(unknown)}; it implements: "
            f"{', '.join(sorted(opkinds.FEATURES)) or 'none'}",
            param_hint="--features",
        )
    if names == sorted(m.features) and policy_file is None:
        raise click.BadParameter(
            f"manifest v{m.version} already enables exactly these features", param_hint="--features"
        )
    if out is not None and out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.set_features(mf.next_version(m.payload) if m.envelope.signatures else m.payload, names)
    payload = apply_policy(payload, policy_file)
    payload = on_enable(m, payload)  # held-changes: edits from now on are held, not the past (ADR 28)
    file = out or file
    save(file, mf.unsigned(payload))
    console.print(
        f"{file}: manifest v{payload['version']} enables {', '.join(names) or 'no features'} (unsigned; "
        f"sign it with a threshold of the roots of v{payload['version'] - 1} and v{payload['version']})"
    )


@click.command("add-node")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--node-info",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON printed by `pocsync node-info` on the node.",
)
@click.option("--role", type=click.Choice(mf.ROLES), required=True, help="regional or un.")
@click.option("--scope", required=True, help="States the node may speak for: ISO3,ISO3,… or 'all'.")
@click.option("--organisation", default=None, help="Organisation name (defaults to the node-info's).")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="NAME=URL",
    help="An endpoint of the node, e.g. http=https://eu.example.org:8443 (repeatable).",
)
def add_node(
    file: Path, node_info: Path, role: str, scope: str, organisation: str | None, endpoints: tuple[str, ...]
) -> None:
    """Add a member node from its node-info JSON."""
    info = read_json_object(node_info, "node-info JSON", "`pocsync node-info`")
    for e in endpoints:
        name, _, url = e.partition("=")
        if not url:
            raise click.BadParameter(f"--endpoint {e!r} must be NAME=URL")
        info.setdefault("endpoints", {})[name] = url
    edit(file, mf.add_node(load(file).payload, info, role=role, scope=check_scope(scope), organisation=organisation))


@click.command("next")
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
    f = click.option(
        "--key-info",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="JSON from `pocsync keys new-signing` or `node-info`.",
    )(f)
    return f


node_option = click.option("--node", "node_id", required=True, help="Node id.")
from_seq_option = click.option(
    "--from-seq", type=click.IntRange(min=1), required=True, help="First seq of the node's log the change applies to."
)


@click.command("rotate-key")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
@_key_options
def rotate_key(
    file: Path, node_id: str, from_seq: int, key_info: Path | None, name: str | None, public: str | None
) -> None:
    """Give NODE a new signing key from seq S; its older keys stop at S-1 (retroactive if S is past)."""
    name, public = key_args(key_info, name, public)
    edit(file, mf.rotate_key(load(file).payload, node_id, name=name, public=public, from_seq=from_seq))


@click.command("set-scope")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
@click.option("--scope", required=True, help="ISO3,ISO3,… or 'all'.")
def set_scope(file: Path, node_id: str, from_seq: int, scope: str) -> None:
    """Change the States NODE may speak for, from seq S of its log."""
    edit(file, mf.set_scope(load(file).payload, node_id, states=check_scope(scope), from_seq=from_seq))


@click.command("remove-node")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
def remove_node(file: Path, node_id: str, from_seq: int) -> None:
    """Remove NODE: its change-sets from seq S on have no validity; nothing is sealed for it again."""
    edit(file, mf.remove_node(load(file).payload, node_id, at_seq=from_seq - 1))


@click.command("restart-chain")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@from_seq_option
@_key_options
@click.option("--prev", default=None, help="Checkpoint (sha256:…) the new segment links to; omit for prev null.")
def restart_chain(
    file: Path,
    node_id: str,
    from_seq: int,
    key_info: Path | None,
    name: str | None,
    public: str | None,
    prev: str | None,
) -> None:
    """Declare a chain restart of NODE at seq S with a new key (lost log, or after an equivocation)."""
    name, public = key_args(key_info, name, public)
    edit(file, mf.restart_chain(load(file).payload, node_id, name=name, public=public, from_seq=from_seq, prev=prev))


@click.command("add-root")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--root-pub",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Root public key file to add.",
)
def add_root(file: Path, root_pub: Path) -> None:
    """Add a root key."""
    edit(file, mf.add_root(load(file).payload, read_root_pub(root_pub)))


@click.command("remove-root")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--root-pub",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Root public key file to remove.",
)
@click.option("--keyid", default=None, help="Or the root's keyid (root:…).")
def remove_root(file: Path, root_pub: Path | None, keyid: str | None) -> None:
    """Remove a root key."""
    target = keyid or (read_root_pub(root_pub) if root_pub else None)
    if not target:
        raise click.UsageError("give --root-pub FILE or --keyid")
    edit(file, mf.remove_root(load(file).payload, target))


@click.command("set-threshold")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--threshold", type=click.IntRange(min=1), required=True, help="Root signatures needed.")
def set_threshold(file: Path, threshold: int) -> None:
    """Change how many root signatures a version needs."""
    edit(file, mf.set_threshold(load(file).payload, threshold))
