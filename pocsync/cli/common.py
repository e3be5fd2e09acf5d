"""Shared pieces of the CLI: error output, output helpers, input files, the signing guard."""

from __future__ import annotations

import base64
import getpass
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pocsync import clock
from pocsync.cli.group import EXIT_ERROR
from pocsync.cli.options import data_option as data_option  # re-exported: the commands import them from here
from pocsync.cli.options import json_option as json_option
from pocsync.cli.options import no_peer_check_option as no_peer_check_option
from pocsync.errors import KeyFileError, PocsyncError, SigningRefused
from pocsync.ops.logs import one_line

console = Console()
err_console = Console(stderr=True)


def fit_to_output(*consoles: Console) -> None:
    """On a terminal, wrap at its width; to a pipe or a file, never wrap (no key split mid-word)."""
    for c in consoles:
        if not c.is_terminal:
            c.soft_wrap = True
            c.width = 1_000_000


fit_to_output(console, err_console)


def fail(reason: str, message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one line ``error (reason): message`` on stderr and exit with ``code``."""
    err_console.print("[bold red]error[/] " + escape(f"({reason}): {' '.join(message.split())}"), highlight=False)
    sys.exit(code)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:  # cells are data, never markup, and one line each: a signed op name "[/x]" or "x\n…" is text
        t.add_row(*[Text("" if v is None else one_line(str(v))) for v in r])
    console.print(t)


MAX_INPUT_BYTES = 64 << 20


def read_input(src: str, *, max_bytes: int = MAX_INPUT_BYTES, limit_note: str = "") -> bytes:
    """The bytes of FILE, or of stdin for ``-``; at most ``max_bytes`` (``limit_note`` ends the refusal)."""
    if src == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    else:
        path = Path(src)
        if path.is_dir():
            raise click.BadParameter(f"{src} is a folder, not a file")
        try:
            with path.open("rb") as f:
                data = f.read(max_bytes + 1)
        except FileNotFoundError:
            raise click.BadParameter(f"file {src} not found") from None
    if len(data) > max_bytes:
        size = f"{max_bytes >> 20} MiB" if max_bytes % (1 << 20) == 0 else f"{max_bytes} bytes"
        raise PocsyncError(f"{src} is larger than {size}{limit_note}", reason="oversize")
    return data


def read_text_arg(path: Path, what: str) -> str:
    """A small UTF-8 text file named on the command line (a key, a node-info, a password)."""
    data = read_input(str(path))
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PocsyncError(f"{path} is not a UTF-8 text file; give the {what}", reason="bad_input_file") from None


def looks_like_csv(text: str) -> bool:
    first = next((ln for ln in text.splitlines() if ln.strip()), "").strip()
    return bool(first) and first[0] not in "{[" and any(sep in first for sep in (",", ";", "\t"))


def key_text(text: str) -> str:
    """The key in a key file's text: the text itself (one line of base64), or the ``public`` member of a JSON
    object (``node-info``, ``keys new-signing``); "" when the JSON holds none."""
    if not text.startswith("{"):
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return ""
    public = obj.get("public", "") if isinstance(obj, dict) else ""
    return public if isinstance(public, str) else ""


def refuse_public_key(path: Path) -> None:
    """A private-key argument given a public key gets "this is a public key", not a file-mode complaint."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return  # keyfiles.read_private names the problem
    text = head.decode("utf-8", "replace").strip()
    public = "PUBLIC KEY-----" in text
    if not public and "PRIVATE KEY" not in text:
        try:
            public = len(base64.b64decode(key_text(text), validate=True)) == 32
        except ValueError:
            public = False
    if public:
        raise KeyFileError(
            f"{path} is a public key: give the private key file (e.g. root.key, kept offline), not the .pub file",
            reason="public_key_given",
        )


def peer_check(nd: Any, store: Any) -> None:
    """The CLI's signing guard (ADR 19): once this store has been in contact with a peer, sign only when
    a peer's signed head vector no older than own_head_max_age_seconds confirmed this node's own head."""
    seen = store.own_head_confirmation()
    if seen is None:
        return  # never in contact with a peer: a new node's first edits
    signed_ms, by, their_seq = seen
    me = nd.node_id
    head = store.heads().get(me)
    own = head.seq if head else 0
    max_age = nd.config.sync.own_head_max_age_seconds
    age = (clock.now_ms() - signed_ms) / 1000
    if age <= max_age and their_seq <= own:
        return
    why = (
        f"the last peer head vector ({by}, {age:.0f} s ago) is older than own_head_max_age_seconds ({max_age})"
        if age > max_age
        else f"{by} holds {me} seq {their_seq} but this store ends at seq {own}"
    )
    if click.get_current_context().meta.get("no_peer_check"):
        store.audit(actor=f"cli:{getpass.getuser()}", action="edit.no_peer_check", target=me, result="ok", detail=why)
        err_console.print(f"[yellow]warning[/] signing without a peer check (audited): {why}")
        return
    raise SigningRefused(
        f"no peer confirmed this node's head lately: {why}; a store restored from a backup could"
        " sign a seq again. Start the daemon (`pocsync run`) and let it pull from a peer, then retry;"
        " a node working alone during a partition may pass --no-peer-check (audited)"
    )
