"""``pocsync check start`` and ``pocsync check status``: mail campaigns of communication checks (issue 15, ADR 26).

``check start`` plans the campaign in the node's store (every email channel of every entry in the node's
scope that the selection matches); the running node (``pocsync run``) mails it through ``[smtp]``, signs
what came of each message and judges the deadline.  ``check status`` shows each campaign's counts.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import click

from pocsync import clock
from pocsync.cli import check_cmd
from pocsync.cli.common import console, data_option, json_option, print_json, table
from pocsync.directory import campaigns
from pocsync.errors import ConfigError, EntryError
from pocsync.folder.nodedir import NodeDir


def _when(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.command("start")
@data_option
@click.option("--states", default="", metavar="ISO3,…", help="Only these States (comma-separated).")
@click.option("--network", default="", metavar="NAME", help="Only entries listing this network.")
@click.option("--kinds", default="", metavar="KIND,…", help="Only these kinds: technical, diplomatic.")
@click.option(
    "--deadline", required=True, metavar="DURATION", help="How long PoCs have to acknowledge, e.g. 48h, 7d (5s to 90d)."
)
@json_option
def start(data: Path, states: str, network: str, kinds: str, deadline: str, as_json: bool) -> None:
    """Start a campaign: the running node mails a check to every email channel of every entry in its scope."""
    seconds = campaigns.parse_duration(deadline)
    sel = campaigns.selector(states, network, kinds)
    nd = NodeDir.open(data)
    smtp = getattr(nd.config, "smtp", None)
    if smtp is None:
        raise ConfigError(
            f"{nd.config.path} has no [smtp] section: the node could not mail the checks", reason="no_smtp"
        )
    with nd.store() as store:
        check_cmd._feature_on(store, "comm-checks", "the check ops of a campaign")
        max_per_entry = getattr(smtp, "max_recipients", 5) or 5
        if not campaigns.plan_targets(store, sel, max_per_entry=max_per_entry):
            raise EntryError(
                "no email channel of an entry in this node's scope matches "
                f"{'--states ' + states + ' ' if states else ''}{'--network ' + network + ' ' if network else ''}"
                f"{'--kinds ' + kinds + ' ' if kinds else ''}".rstrip()
                + "; no campaign was started",
                reason="nothing_to_check",
            )
        out = campaigns.create_campaign(
            store,
            node=nd.node_id,
            sel=sel,
            deadline_s=seconds,
            started_by=f"cli:{getpass.getuser()}",
            now_ms=clock.now_ms(),
            max_per_entry=max_per_entry,
        )
    if as_json:
        print_json(out)
        return
    console.print(
        f"campaign {out['campaign']}: {out['channels']} email channel(s) to check, deadline "
        f"{deadline}; the running node (pocsync run) mails them and records the results"
    )


@click.command("status")
@data_option
@click.option("--campaign", default=None, metavar="ID", help="Only this campaign.")
@json_option
def status(data: Path, campaign: str | None, as_json: bool) -> None:
    """Each campaign's counts: mailed, acknowledged, no response, bounced, skipped; response times."""
    nd = NodeDir.open(data)
    with nd.store() as store:
        rows = campaigns.campaign_status(store, campaign)
        checked = campaigns.checked_by(store)
    if campaign is not None and not rows:
        raise ConfigError(f"no campaign {campaign!r} at {nd.node_id}", reason="not_found")
    if as_json:
        print_json({"campaigns": rows, "checked_by": checked})
        return
    table(
        f"check campaigns at {nd.node_id}",
        [
            "campaign",
            "started",
            "status",
            "channels",
            "waiting",
            "acknowledged",
            "no response",
            "bounced",
            "skipped",
            "invalid",
            "median s",
            "p90 s",
        ],
        [
            [
                c["campaign"],
                _when(c["created_ms"]),
                c["status"],
                c["channels"],
                c["counts"]["pending"] + c["counts"]["sending"] + c["counts"]["sent"],
                c["counts"]["acknowledged"],
                c["counts"]["no_response"],
                c["counts"]["bounced"],
                c["counts"]["skipped"],
                c["counts"]["invalid"],
                c["response_seconds"]["median"],
                c["response_seconds"]["p90"],
            ]
            for c in rows
        ],
    )
    if checked:
        table(
            "latest check per channel, by the node that signed it",
            ["node", "results"],
            [[n, ", ".join(f"{k} {v}" for k, v in sorted(d.items()))] for n, d in checked.items()],
        )
