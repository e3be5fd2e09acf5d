"""``pocsync token issue``: a PoC token (scope directory) or an operator token (scope health), audited."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click

from pocsync import tokens
from pocsync.cli.common import data_option
from pocsync.core import model
from pocsync.errors import ConfigError
from pocsync.folder.nodedir import NodeDir

DAY = 86_400


@click.command("issue")
@data_option
@click.option("--poc", "poc", default=None, metavar="KEY", help="The PoC's entry key, e.g. AUT/technical.")
@click.option("--operator", default=None, metavar="NAME", help="An operator name: a health-scope token.")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=3650),
    default=None,
    help="Lifetime in days (default 7 for a PoC, 365 for an operator).",
)
@click.option(
    "--send",
    is_flag=True,
    help="Mail a PoC token (with renewal instructions) to the entry's own addresses through [smtp] "
    "instead of printing it.",
)
def issue(data: Path, poc: str | None, operator: str | None, days: int | None, send: bool) -> None:
    """Issue a token signed by this node's token key and print it alone on stdout (or mail it: --send)."""
    if (poc is None) == (operator is None):
        raise click.UsageError("give exactly one of --poc KEY or --operator NAME")
    if send and poc is None:
        raise click.UsageError("--send mails a PoC token to the entry's own addresses: give --poc KEY")
    nd = NodeDir.open(data)
    if send and nd.config.smtp is None:
        raise ConfigError(f"{nd.config.path} has no [smtp] section: cannot mail the token", reason="no_smtp")
    with nd.store() as store:
        m = store.require_manifest()
        if poc is not None:
            state, _ = model.parse_key(poc)
            if store.entry(poc) is None:
                raise tokens.TokenError(
                    f"{poc} is not a live entry of the merged directory", reason="subject_not_listed"
                )
            node = m.node(nd.node_id)
            if node is None or not node.covers(state, tokens.LATEST):
                raise tokens.TokenError(
                    f"{nd.node_id}'s scope does not cover {state}; issue it at a node that does",
                    reason="issuer_out_of_scope",
                )
            subject, scope, ttl = poc, "directory", (days or 7) * DAY
        else:
            subject, scope, ttl = f"operator:{operator}", "health", (days or 365) * DAY
        tok = tokens.issue_token(
            issuer=nd.node_id,
            kid=nd.config.node.token_kid or f"{nd.node_id}:t1",
            key=nd.token_key(),
            subject=subject,
            scope=scope,
            now_s=int(time.time()),
            ttl_s=ttl,
        )
        # mailed before it is audited as issued: a failed send leaves no trace of a token nobody holds
        if send and poc is not None:
            entry = store.entry(poc)["entry"]  # type: ignore[index]  # checked above: a live entry
            from pocsync.cli.token_mail import send_token

            labels = send_token(nd, entry, poc, tok, ttl)
        store.audit(
            actor=f"cli:{getpass.getuser()}",
            action="token.issue",
            target=subject,
            result="ok",
            detail=f"scope {scope}, {ttl // DAY} days" + (f", mailed to {', '.join(labels)}" if send else ""),
        )
    if send:
        click.echo(f"token for {poc} mailed to the entry's {', '.join(labels)}")
        return
    click.echo(tok)
