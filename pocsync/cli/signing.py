"""The one signing path of the CLI: sign ops as this node's next change-set, or commit nothing."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from rich.markup import escape

from pocsync.cli.common import console, err_console, peer_check
from pocsync.errors import EntryError
from pocsync.folder.nodedir import NodeDir


def author_of(author: str | None, nd: NodeDir) -> str:
    """``--author``, or ``user@node`` by default (audit)."""
    return author or f"{getpass.getuser()}@{nd.node_id}"


def sign_ops(nd: NodeDir, ops: list[dict[str, Any]], author: str, *, labels: list[str] | None = None) -> None:
    """Sign and commit ``ops`` as one change-set, or commit nothing.

    The store refuses, before signing, every op a peer would refuse (feature, key, scope at the next seq,
    structure, kind).  With ``labels`` (one per op: the input's records) each refusal is printed against its
    record; without, the first refusal is the one line of the error.  Nothing is committed either way.
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
        raise _refused(exc, refusals, ops, labels) from None
    console.print(f"committed change-set {nd.node_id} seq {out.seq} ({out.cs_id}) with {len(ops)} op(s)")
    note_held(nd, out.cs_id)  # held contact changes: say so, and when they take effect (issue 16)
    for r in out.refused:
        err_console.print("[yellow]refused[/] " + escape(f"op {r.index} on {r.key}: {r.reason}: {r.message}"))
    if out.refused:
        sys.exit(1)


def _refused(
    exc: EntryError, refusals: list[dict[str, Any]], ops: list[dict[str, Any]], labels: list[str] | None
) -> EntryError:
    """The error for ops the store refused before signing (each refusal printed first when ``labels``)."""
    if labels is None or len(ops) == 1:
        r = refusals[0]
        more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
        return EntryError(
            f"{r['op']} {r['key']}: {r['message']}{more}; every peer would refuse it, so nothing was committed",
            reason=exc.reason,
        )
    for r in refusals:
        where = labels[r["index"]] if r["index"] < len(labels) else f"op {r['index']}"
        err_console.print(
            "[red]refused[/] " + escape(f"{where} ({r['op']} {r['key']}): {r['reason']}: {r['message']}"),
            highlight=False,
        )
    return EntryError(
        f"{len(refusals)} of {len(ops)} record(s) break rules every peer applies "
        f"({refusals[0]['message']}); nothing was committed",
        reason=exc.reason,
    )


def note_held(nd: NodeDir, cs_id: str | None) -> None:
    """After an edit: one line per put of it that is held (it has not taken effect)."""
    with nd.store() as store:
        rows = [r for r in store.held_changes() if cs_id and r["put"].startswith(cs_id + "#")]
    for r in rows:
        console.print(
            f"held: {r['key']} ({', '.join(r['fields'])}) takes effect after a notice by another node and "
            "the hold, or at once with a second person's approval (`pocsync entry pending` shows it)",
            markup=False,
            highlight=False,
        )
