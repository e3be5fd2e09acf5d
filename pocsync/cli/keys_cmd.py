"""``pocsync keys root-init|new-signing``: the offline root key, and new node signing keys.

``keys staff-init`` is in held_cmd.py.
"""

from __future__ import annotations

from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.cli.common import console, data_option, print_json
from pocsync.core.keys import ed25519_public_b64, root_keyid
from pocsync.folder import keyfiles
from pocsync.folder.nodedir import NodeDir


@click.command("root-init")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for root.key (0600) and root.pub.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Encrypt root.key (PKCS#8) with the passphrase in this file.",
)
def root_init(out: Path, passphrase_file: Path | None) -> None:
    """Create an offline root key pair: OUT/root.key and OUT/root.pub."""
    key = Ed25519PrivateKey.generate()
    keyfiles.private_dir(out)  # 0700 whatever the umask (issue 11, case 12)
    keyfiles.write_private(out / "root.key", key, passphrase=keyfiles.read_passphrase(passphrase_file))
    pub = ed25519_public_b64(key)
    keyfiles.write_public(out / "root.pub", pub)
    console.print(f"root key {root_keyid(pub)} written to {out}/root.key (keep it offline) and {out}/root.pub")


@click.command("new-signing")
@data_option
@click.option("--name", required=True, help="Name of the new key, e.g. k2 (must be new for this node).")
def new_signing(data: Path, name: str) -> None:
    """Generate a new signing key for a rotation; prints its JSON for `manifest rotate-key --key-info`."""
    nd = NodeDir.open(data)
    key = nd.new_signing_key(name)
    print_json({"node": nd.node_id, "signing_key": {"name": name, "public": ed25519_public_b64(key)}})
