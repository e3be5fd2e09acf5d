"""``pocsync check …`` and the freshness commands of ``pocsync entry`` (issue 15, PROTOCOL.md §15).

* ``check record``: a staff member records the result of checking one channel (a phone call, or an
  email exchange outside a campaign) — a signed ``check`` op.
* ``entry confirm``: the secretariat confirms entries without changing them — a ``confirm`` op.
* ``entry overdue``: entries overdue under the manifest's ``policy.freshness``, judged on this node's clock.

The ``check`` group (registry.py) also holds the campaign commands (``check start``, ``check status``) of the mail side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pocsync import clock
from pocsync.cli.common import data_option, json_option, no_peer_check_option, print_json, table
from pocsync.cli.signing import author_of, sign_ops
from pocsync.core import checks, model
from pocsync.directory import freshness
from pocsync.errors import EntryError, ManifestError
from pocsync.folder.nodedir import NodeDir

MANUAL_RESULTS = ("answered", "no_answer", "wrong_number", "acknowledged", "no_response", "bounced")


def _feature_on(store: Any, feature: str, what: str) -> None:
    m = store.require_manifest()
    if feature not in m.features:
        raise ManifestError(
            f"manifest v{m.version} does not enable feature {feature!r}, so every peer would refuse "
            f"{what}; the root enables it with `pocsync manifest set-features`",
            reason="feature_off",
        )


@click.command("record")
@data_option
@no_peer_check_option
@click.argument("key")
@click.option(
    "--channel",
    required=True,
    metavar="phone:N|email:N",
    help="The entry's N-th phone or email now (phone:1 = its first phone); the op stores the hash of "
    "its value, not the position.",
)
@click.option(
    "--result",
    required=True,
    type=click.Choice(MANUAL_RESULTS),
    help="Phone: answered, no_answer, wrong_number.  Email: acknowledged, no_response, bounced.",
)
@click.option("--campaign", default=None, metavar="ID", help="Campaign the check belongs to (optional).")
@click.option(
    "--response-seconds",
    type=click.IntRange(min=0),
    default=None,
    help="With --result acknowledged: seconds from the request to the answer (default 0).",
)
@click.option(
    "--smtp-code",
    type=click.IntRange(400, 599),
    default=None,
    help="With --result bounced: the SMTP reply code (required).",
)
@click.option("--author", default=None, help="Staff member who made the check (audit); default user@node.")
def check_record(
    data: Path,
    key: str,
    channel: str,
    result: str,
    campaign: str | None,
    response_seconds: int | None,
    smtp_code: int | None,
    author: str | None,
) -> None:
    """Record the result of checking one channel of KEY (e.g. a phone call) as a signed check op."""
    model.parse_key(key)
    nd = NodeDir.open(data)
    with nd.store() as store:
        _feature_on(store, "comm-checks", "a check")
        row = store.entry(key)
    if row is None:
        raise EntryError(f"{key} is not in the merged view: there is no channel to check", reason="not_found")
    cid = checks.resolve_channel(row["entry"], channel)
    if response_seconds is not None and result != "acknowledged":
        raise click.BadParameter("only an acknowledged result has a response time", param_hint="--response-seconds")
    if smtp_code is not None and result != "bounced":
        raise click.BadParameter("only a bounced result has an SMTP reply code", param_hint="--smtp-code")
    if result == "bounced" and smtp_code is None:
        raise click.BadParameter("a bounced result needs the SMTP reply code", param_hint="--smtp-code")
    op: dict[str, Any] = {"op": "check", "key": key, "channel": cid, "result": result, "campaign": campaign}
    if result == "acknowledged":
        op["response_seconds"] = response_seconds or 0
    if result == "bounced":
        op["smtp_code"] = smtp_code
    sign_ops(nd, [op], author_of(author, nd))


# --- entry confirm / entry overdue ---------------------------------------------------------------------------
@click.command("confirm")
@data_option
@no_peer_check_option
@click.argument("keys", nargs=-1, required=True, metavar="KEY…")
@click.option("--author", default=None, help="Staff member confirming (audit); default user@node.")
def entry_confirm(data: Path, keys: tuple[str, ...], author: str | None) -> None:
    """Confirm entries without changing them (one signed confirm op per KEY, in one change-set).

    Only keys of this node's scope can be confirmed; a key not in the merged view is refused.  A
    confirmation resets the confirmation period of policy.freshness (see `entry overdue`)."""
    for k in keys:
        model.parse_key(k)
    if len(set(keys)) != len(keys):
        raise click.BadParameter("a key is given twice", param_hint="KEY")
    nd = NodeDir.open(data)
    with nd.store() as store:
        _feature_on(store, "freshness", "a confirmation")
        missing = [k for k in keys if store.entry(k) is None]
    if missing:
        raise EntryError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the merged view: "
            "nothing to confirm, so nothing was committed",
            reason="not_found",
        )
    sign_ops(nd, [{"op": "confirm", "key": k} for k in keys], author_of(author, nd))


@click.command("overdue")
@data_option
@click.option("--all", "every", is_flag=True, help="Every overdue entry, not only those of this node's scope.")
@json_option
def entry_overdue(data: Path, every: bool, as_json: bool) -> None:
    """Entries overdue under the manifest's policy.freshness, on this node's clock: not confirmed within
    confirm_days (of their last change or confirmation), or not verified within verify_days.

    By default only entries this node can confirm (its scope)."""
    nd = NodeDir.open(data)
    now = clock.now_ms()
    with nd.store() as store:
        m = store.require_manifest()
        _feature_on(store, "freshness", "a confirmation")
        rows = store.freshness(now_ms_=now)
    me = m.nodes.get(nd.node_id)
    out = []
    for f in rows:
        if not f["overdue"]:
            continue
        if not every and (me is None or not me.covers(f["entry"]["state"], 1 << 53)):
            continue
        out.append({"key": f["key"], "origin": f["origin"], **freshness.public(f)})
    if as_json:
        print_json(out)
        return
    table(
        f"{len(out)} overdue entr{'y' if len(out) == 1 else 'ies'} (policy.freshness, now {freshness.iso(now)})",
        ["key", "origin", "overdue", "last modified", "last confirmed", "last verified", "confirm due", "verify due"],
        [
            [
                r["key"],
                r["origin"],
                ", ".join(r["overdue"]["reasons"]),
                r["last_modified"],
                r["last_confirmed"] or "never",
                r["last_verified"] or "never",
                r["overdue"]["confirm_due"],
                r["overdue"]["verify_due"],
            ]
            for r in out
        ],
    )
