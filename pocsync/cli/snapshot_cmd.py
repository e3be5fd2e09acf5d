"""``pocsync snapshot``: a signed, encrypted copy of the merged view for the day the network is down.

Issue 16 part 3, PROTOCOL.md §17.3, ADR 32.  The file is age-encrypted (to a passphrase or to age
recipients) and verifies offline against the federation's root public key alone.
"""

from __future__ import annotations

import getpass
import os
import stat
from pathlib import Path
from typing import Any

import click

from pocsync.cli.common import console, data_option, err_console, json_option, print_json, read_input, read_text_arg
from pocsync.core import jsonc
from pocsync.directory import snapshot as snap
from pocsync.errors import KeyFileError
from pocsync.folder.nodedir import NodeDir

passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the passphrase (first line; mode 0600).",
)
identity_option = click.option(
    "--identity",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="age identity file (AGE-SECRET-KEY-1… lines, mode 0600), e.g. from `pocsync snapshot keygen`.",
)


def _private_file(path: Path, what: str) -> str:
    """A small secret file: it must exist and be readable by its owner only."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise click.BadParameter(f"{what} {path} not found") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{what} {path} is readable by others (mode {oct(st.st_mode & 0o777)}); run `chmod 600 {path}`",
            reason="key_permissions",
        )
    text = read_text_arg(path, what)
    if not text:
        raise KeyFileError(f"{what} {path} is empty", reason="empty_file")
    return text


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.BadParameter(f"{path} exists; refusing to overwrite it") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _secret(passphrase_file: Path | None, identity: Path | None) -> dict[str, Any]:
    if (passphrase_file is None) == (identity is None):
        raise click.UsageError("give exactly one of --passphrase-file FILE or --identity FILE")
    if passphrase_file is not None:
        return {"passphrase": _private_file(passphrase_file, "passphrase file").splitlines()[0].encode()}
    return {"identities": snap.read_identities(_private_file(identity, "identity file"))}  # type: ignore[arg-type]


def _open(src: Path, passphrase_file: Path | None, identity: Path | None) -> bytes:
    secret = _secret(passphrase_file, identity)
    if src.is_dir():
        raise click.BadParameter(f"{src} is a folder, not a snapshot file")
    return snap.decrypt(read_input(str(src)), **secret)


@click.command("create")
@data_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The snapshot file to write (must not exist).",
)
@passphrase_option
@click.option(
    "--generate-passphrase",
    is_flag=True,
    help="Write a new random passphrase (160 bits) to --passphrase-file, which must not exist.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="KEY",
    help="Encrypt to this age public key (age1…); repeatable.",
)
def create(
    data: Path, out: Path, passphrase_file: Path | None, generate_passphrase: bool, recipients: tuple[str, ...]
) -> None:
    """Write a snapshot of the merged view, signed by this node, encrypted with age."""
    if (passphrase_file is None) == (not recipients):
        raise click.UsageError("give exactly one of --passphrase-file FILE or --recipient KEY…")
    if generate_passphrase and passphrase_file is None:
        raise click.UsageError("--generate-passphrase writes to --passphrase-file FILE: give it")
    if out.exists():
        raise click.BadParameter(f"{out} exists; refusing to overwrite it", param_hint="'--out'")
    if generate_passphrase and passphrase_file is not None and passphrase_file.exists():
        raise click.BadParameter(
            f"{passphrase_file} exists; --generate-passphrase writes a new file", param_hint="'--passphrase-file'"
        )
    nd = NodeDir.open(data)
    passphrase = None
    if passphrase_file is not None and not generate_passphrase:
        passphrase = _private_file(passphrase_file, "passphrase file").splitlines()[0].encode()
    new_passphrase = snap.generate_passphrase() if generate_passphrase else None
    if new_passphrase is not None:
        passphrase = new_passphrase.encode()
    with nd.store() as store:
        container = snap.build(store, nd)
        blob = snap.encrypt(container, passphrase=passphrase, recipients=list(recipients))
        store.audit(
            actor=f"cli:{getpass.getuser()}",
            action="snapshot.create",
            target=str(out),
            result="ok",
            detail="passphrase" if passphrase else f"{len(recipients)} recipient(s)",
        )
    if new_passphrase is not None:
        _write_private(passphrase_file, (new_passphrase + "\n").encode())  # type: ignore[arg-type]
    _write_private(out, blob)
    p = jsonc.loads(snap.open_container(container)[0].payload)
    console.print(
        f"snapshot of {len(p['entries'])} entries (digest {p['digest']}, taken {p['taken_at']}) written to {out}"
    )
    if new_passphrase is not None:
        err_console.print(f"passphrase written to {passphrase_file} (0600): keep it apart from the snapshot")


@click.command("verify")
@click.argument("src", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--root-pub",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The federation's root public key (root.pub), obtained apart from the snapshot.",
)
@passphrase_option
@identity_option
@json_option
def verify(src: Path, root_pub: Path, passphrase_file: Path | None, identity: Path | None, as_json: bool) -> None:
    """Check a snapshot offline against the federation's root key and print its age."""
    root = read_text_arg(root_pub, "root public key (root.pub)")
    v = snap.verify(_open(src, passphrase_file, identity), root)
    p = v.payload
    out = {
        "ok": True,
        "node": p["node"],
        "taken_at": p["taken_at"],
        "age_seconds": int(v.age_seconds),
        "digest": p["digest"],
        "entries": len(p["entries"]),
        "records": len(p["records"]),
        "manifest": v.manifest_version,
        "signed_by": v.keyid,
    }
    if as_json:
        print_json(out)
        return
    console.print(
        f"ok: snapshot by {p['node']} ({v.keyid}) taken {p['taken_at']}, {snap.age_words(v.age_seconds)} "
        f"ago; {len(p['entries'])} entries; digest {p['digest']}; manifest v{v.manifest_version} "
        f"anchored at the given root key"
    )


@click.command("render")
@click.argument("src", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@passphrase_option
@identity_option
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The printable HTML page to write (must not exist).",
)
@click.option(
    "--root-pub",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify against this root public key first, and say so on the page.",
)
def render(
    src: Path, passphrase_file: Path | None, identity: Path | None, html_out: Path, root_pub: Path | None
) -> None:
    """Write a self-contained printable page listing every PoC by State (no script, no outside asset)."""
    if html_out.exists():
        raise click.BadParameter(f"{html_out} exists; refusing to overwrite it", param_hint="'--html'")
    plain = _open(src, passphrase_file, identity)
    verified, kid = None, None
    if root_pub is not None:
        from pocsync.core.keys import root_keyid

        root = read_text_arg(root_pub, "root public key (root.pub)")
        verified = snap.verify(plain, root)
        kid = root_keyid(root)
        payload = verified.payload
    else:
        env, _ = snap.open_container(plain)
        payload = jsonc.loads(env.payload)
        if not isinstance(payload, dict) or not isinstance(payload.get("entries"), list):
            raise snap.SnapshotError("the snapshot payload is malformed", reason="bad_snapshot")
    _write_private(html_out, snap.render_html(payload, verified=verified, root_keyid_=kid).encode("utf-8"))
    console.print(
        f"{len(payload['entries'])} entries written to {html_out}"
        + ("" if verified else " (not verified: give --root-pub to verify first)")
    )


@click.command("keygen")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The age identity file to write (mode 0600; must not exist).",
)
def keygen(out: Path) -> None:
    """Make an age identity for receiving snapshots; prints its public key (age1…) for --recipient."""
    import pyrage

    ident = pyrage.x25519.Identity.generate()
    pub = str(ident.to_public())
    _write_private(out, f"# public key: {pub}\n{ident}\n".encode())
    click.echo(pub)
