"""Held contact changes at the command line (issue 16 part 1, PROTOCOL.md §16, ADRs 28-30).

``entry pending`` lists the held changes and when each takes effect; ``entry approve`` signs a second
person's approval (counts from another node, or with ``--staff-key``: a staff key listed in the manifest
for the change's origin, of another person than its author); ``entry object`` and ``entry release`` sign
the other hold ops (the notifying node's daemon signs notices and releases by itself).  ``keys staff-init``
makes a staff key pair; ``manifest staff-key`` lists its public half for an origin; ``manifest set-hold``
sets the hold period.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.cli.common import (
    console,
    data_option,
    json_option,
    no_peer_check_option,
    print_json,
    read_text_arg,
    refuse_public_key,
    table,
)
from pocsync.cli.signing import sign_ops
from pocsync.core import held, model
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64, ed25519_public_from_b64
from pocsync.errors import EntryError, KeyFileError, PocsyncError
from pocsync.folder import keyfiles
from pocsync.folder.nodedir import NodeDir


def on_enable(old: mf.Manifest, payload: dict[str, Any]) -> dict[str, Any]:
    """When a new manifest version turns held-changes on, hold only the puts signed from now on.

    ``policy.held-changes.since`` is set to the current time (unless the policy already names one): the
    changes signed before the federation enabled the guard had no notice, and must not be held after the
    fact when every node re-derives its view (ADR 28).
    """
    if held.FEATURE in old.features or held.FEATURE not in (payload.get("features") or []):
        return payload
    policy = dict((payload.get("policy") or {}).get(held.FEATURE) or {})
    policy.setdefault("hold_seconds", held.HOLD_SECONDS_DEFAULT)
    policy.setdefault("since", f"{time.time_ns() // 10**6:013d}-0000")
    return mf.set_policy(payload, held.FEATURE, policy)


def when(ms: int | None) -> str:
    return "after a notice by another node and the hold" if ms is None else held.iso(ms)


# --- entry pending / approve / object / release ---------------------------------------------------------
@click.command("pending")
@data_option
@json_option
@click.option(
    "--values",
    is_flag=True,
    help="With --json: also the proposed entry and the previous one (to judge before approving; PoCs never see them).",
)
def entry_pending(data: Path, as_json: bool, values: bool) -> None:
    """Held contact changes that have not taken effect, and when each takes effect."""
    if values and not as_json:
        raise click.UsageError("--values goes with --json")
    with NodeDir.open(data).store() as store:
        rows = store.held_changes(with_entries=values)
    if as_json:
        print_json(rows)
        return
    table(
        f"{len(rows)} held change(s)",
        ["key", "status", "origin", "author", "changes", "takes effect", "put"],
        [
            [
                r["key"],
                r["status"],
                r["origin"],
                r["author"],
                ", ".join(r["fields"]),
                "cancelled (objected)" if r["status"] == "objected" else when(r["takes_effect_ms"]),
                r["put"],
            ]
            for r in rows
        ],
    )


def _target(store: Any, key: str, put_ref: str | None, *, objected_ok: bool = False) -> dict[str, Any]:
    model.parse_key(key)
    rows: list[dict[str, Any]] = [r for r in store.held_changes(key) if r["status"] == "pending" or objected_ok]
    if put_ref is not None:
        rows = [r for r in rows if r["put"] == put_ref]
    if not rows:
        raise EntryError(
            f"{key} has no held change{' ' + put_ref if put_ref else ''} waiting to take effect "
            "(see `pocsync entry pending`); nothing was committed",
            reason="not_pending",
        )
    if len(rows) > 1:
        raise EntryError(
            f"{key} has {len(rows)} held changes ({', '.join(r['put'] for r in rows)}): name one "
            "with --put; nothing was committed",
            reason="ambiguous",
        )
    return rows[0]


def _hold_edit(
    data: Path, kind: str, key: str, put_ref: str | None, author: str, staff: tuple[Path, str] | None = None
) -> None:
    nd = NodeDir.open(data)
    with nd.store() as store:
        m = store.require_manifest()
        if held.FEATURE not in m.features:
            raise EntryError(
                f"the federation's manifest v{m.version} does not enable held-changes; nothing was committed",
                reason="feature_off",
            )
        target = _target(store, key, put_ref, objected_ok=kind == "approve")
    op: dict[str, Any] = {"op": kind, "key": key, "put": target["put"]}
    if staff is not None:
        path, name = staff
        refuse_public_key(path)
        sk = keyfiles.read_private(path, Ed25519PrivateKey)  # type: ignore[type-abstract]  # the key type asked for
        op["staff"] = {
            "origin": target["origin"],
            "name": name,
            "sig": base64.b64encode(sk.sign(held.staff_message(key, target["put"]))).decode(),
        }
    sign_ops(nd, [op], author)


author_option = click.option(
    "--author",
    required=True,
    help="Who does this (audit only: a typed name proves nothing and approves nothing by itself).",
)
put_option = click.option(
    "--put",
    "put_ref",
    default=None,
    metavar="REF",
    help="The held put (as `entry pending` shows it) when KEY has several.",
)


@click.command("approve")
@data_option
@no_peer_check_option
@click.argument("key")
@author_option
@put_option
@click.option(
    "--staff-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your staff private key (`keys staff-init`), listed in the manifest for the change's origin: "
    "needed when this node is the change's origin.",
)
@click.option("--staff-name", default=None, help="The name your staff key is listed under (with --staff-key).")
def entry_approve(
    data: Path, key: str, author: str, put_ref: str | None, staff_key: Path | None, staff_name: str | None
) -> None:
    """Approve KEY's held change as a second person: it takes effect at once.

    Counts when this node is not the change's origin, or with --staff-key of another person than the
    change's author.  The proposer's own node cannot approve its change: that is refused."""
    if (staff_key is None) != (staff_name is None):
        raise click.UsageError("give both --staff-key and --staff-name, or neither")
    _hold_edit(data, "approve", key, put_ref, author, (staff_key, staff_name) if staff_key and staff_name else None)


@click.command("object")
@data_option
@no_peer_check_option
@click.argument("key")
@author_option
@put_option
def entry_object(data: Path, key: str, author: str, put_ref: str | None) -> None:
    """Object to KEY's held change: it is cancelled everywhere and every dashboard raises an alarm."""
    _hold_edit(data, "object", key, put_ref, author)


@click.command("release")
@data_option
@no_peer_check_option
@click.argument("key")
@author_option
@put_option
def entry_release(data: Path, key: str, author: str, put_ref: str | None) -> None:
    """Release KEY's held change once another node's notice is older than the hold (the notifying node's
    daemon does this by itself); refused before."""
    _hold_edit(data, "release", key, put_ref, author)


# --- keys and manifest -------------------------------------------------------------------------------
@click.command("staff-init")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for NAME.key (0600) and NAME.pub.",
)
@click.option("--name", required=True, help="Your staff name, e.g. alice@eu (as the manifest will list it).")
def staff_init(out: Path, name: str) -> None:
    """Create a personal staff key pair for approving held changes (keep NAME.key off the node)."""
    if not held.STAFF_NAME_RE.match(name):
        raise click.BadParameter(f"must match {held.STAFF_NAME_RE.pattern}", param_hint="--name")
    if (out / f"{name}.key").exists():
        raise KeyFileError(f"{out / (name + '.key')} exists; refusing to overwrite it", reason="exists")
    key = Ed25519PrivateKey.generate()
    keyfiles.private_dir(out)
    keyfiles.write_private(out / f"{name}.key", key)
    keyfiles.write_public(out / f"{name}.pub", ed25519_public_b64(key))
    console.print(
        f"staff key {name} written to {out}/{name}.key (0600) and {out}/{name}.pub; list it with "
        f"`pocsync manifest staff-key FILE --node NODE --name {name} --public-file {out}/{name}.pub`"
    )


@click.command("staff-key")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--node", "node_id", required=True, help="The origin whose held changes this staff key may approve.")
@click.option("--name", required=True, help="The staff member's name.")
@click.option(
    "--public-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="NAME.pub from `keys staff-init` (omit with --remove).",
)
@click.option("--remove", is_flag=True, help="Remove this staff key instead.")
def manifest_staff_key(file: Path, node_id: str, name: str, public_file: Path | None, remove: bool) -> None:
    """List (or --remove) a staff public key for an origin in FILE's policy.held-changes (unsigned)."""
    from pocsync.cli.manifest_io import edit, load

    m = load(file)
    if held.FEATURE not in m.features:
        raise click.BadParameter(
            f"manifest v{m.version} does not enable held-changes (`manifest set-features`)", param_hint="FILE"
        )
    if node_id not in m.nodes:
        raise click.BadParameter(f"{node_id!r} is not a node of manifest v{m.version}", param_hint="--node")
    policy = dict(m.policy.get(held.FEATURE) or {})
    staff = {k: list(v) for k, v in (policy.get("staff_keys") or {}).items()}
    mine = [k for k in staff.get(node_id, []) if k["name"] != name]
    if remove:
        if len(mine) == len(staff.get(node_id, [])):
            raise click.BadParameter(f"no staff key {name!r} is listed for {node_id}", param_hint="--name")
    else:
        if public_file is None:
            raise click.UsageError("give --public-file (or --remove)")
        pub = read_text_arg(public_file, "staff public key")
        if "PRIVATE KEY" in pub:
            raise KeyFileError(f"{public_file} is a private key: give NAME.pub", reason="private_key_given")
        try:
            ed25519_public_from_b64(pub)
        except PocsyncError:
            raise KeyFileError(
                f"{public_file} does not hold an Ed25519 public key in base64 (NAME.pub of `keys staff-init`)",
                reason="bad_key_file",
            ) from None
        mine.append({"name": name, "public": pub})
    if mine:
        staff[node_id] = sorted(mine, key=lambda k: k["name"])
    else:
        staff.pop(node_id, None)
    if staff:
        policy["staff_keys"] = staff
    else:
        policy.pop("staff_keys", None)
    payload = mf.next_version(m.payload) if m.envelope.signatures else m.payload
    edit(file, mf.set_policy(payload, held.FEATURE, policy))


@click.command("set-hold")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--seconds",
    type=click.IntRange(1, held.HOLD_SECONDS_MAX),
    required=True,
    help="How long a contact change is held after another node's notice (default policy: 86400).",
)
def manifest_set_hold(file: Path, seconds: int) -> None:
    """Set policy.held-changes.hold_seconds in FILE (unsigned)."""
    from pocsync.cli.manifest_io import edit, load

    m = load(file)
    if held.FEATURE not in m.features:
        raise click.BadParameter(
            f"manifest v{m.version} does not enable held-changes (`manifest set-features`)", param_hint="FILE"
        )
    policy = dict(m.policy.get(held.FEATURE) or {}) | {"hold_seconds": seconds}
    payload = mf.next_version(m.payload) if m.envelope.signatures else m.payload
    edit(file, mf.set_policy(payload, held.FEATURE, policy))
