"""Manifest files at the command line: read, write and edit one; root public keys and JSON inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pocsync.cli.common import console, err_console, key_text, looks_like_csv, read_input, read_text_arg
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.keys import unb64
from pocsync.errors import KeyFileError, ManifestError, PocsyncError


def read_root_pub(path: Path) -> str:
    """A root public key file: one line of base64 (as ``keys root-init`` writes) or JSON {public}."""
    text = read_text_arg(path, "root public key")
    if "PRIVATE KEY" in text:
        raise KeyFileError(
            f"{path} is a private key: give the public key file (root.pub); "
            "and keep the private key off shared machines",
            reason="private_key_given",
        )
    text = key_text(text)
    if len(unb64(text, what=f"root public key in {path}")) != 32:
        raise KeyFileError(
            f"{path} does not hold a root public key (one line of base64, as `pocsync keys root-init` wrote root.pub)",
            reason="bad_key_file",
        )
    return text


def read_json_object(path: Path, what: str, produced_by: str, *, advice: str | None = None) -> dict[str, Any]:
    """A JSON object from ``path``; a clear error for CSV, arrays, or anything else.  ``advice`` replaces
    "give the WHAT that PRODUCED_BY printed" for a file a person writes."""
    text = read_text_arg(path, what)
    try:
        obj = jsonc.loads(text.encode())
    except PocsyncError as exc:
        hint = " (it looks like CSV)" if looks_like_csv(text) else ""
        raise ManifestError(
            f"{path} is not JSON{hint}: {exc.message}; {advice or f'give the {what} that {produced_by} printed'}",
            reason="bad_input_file",
        ) from None
    if not isinstance(obj, dict):
        kind = "a JSON array" if isinstance(obj, list) else f"a JSON {type(obj).__name__}"
        raise ManifestError(
            f"{path} holds {kind}, not one object: "
            f"{advice or f'give the {what} of one node, as {produced_by} printed it'}",
            reason="bad_input_file",
        )
    return obj


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
        err_console.print(
            f"note: the edit removed {len(old.envelope.signatures)} signature(s); sign v{new.version} again. "
            f"If signed v{new.version} was already installed or published anywhere, nodes will refuse "
            f"this one as not newer: edit a copy made with `pocsync manifest next` instead",
            highlight=False,
            markup=False,
        )
    console.print(f"{path}: manifest v{new.version} (unsigned)")
