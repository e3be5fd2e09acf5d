"""``pocsync status``: a node's sync health as tables; exit 1 when not converged or equivocating."""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
from rich.errors import MarkupError
from rich.markup import escape

from pocsync.cli.common import console, err_console, print_json, read_text_arg, table
from pocsync.errors import PocsyncError
from pocsync.ops import health as healthmod
from pocsync.ops.logs import one_line


def _age(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.0f} s" if v < 120 else f"{v / 60:.0f} min" if v < 7200 else f"{v / 3600:.1f} h"


def _status(v: dict[str, Any]) -> str:
    if v["status"] == "offline" and v.get("offline_since"):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["offline_since"]))
        return f"offline since {since}" + (f" ({v['last_error']})" if v.get("last_error") else "")
    if v["status"] == "self":
        return "this node"
    return str(v["status"])


def _verdict(a: dict[str, Any]) -> str:
    return {
        "same": "same heads and digest",
        "behind": f"lacks {a['behind']} change-set(s) this node holds",
        "ahead": f"holds {a['ahead']} change-set(s) this node lacks",
        "diverged": "DIVERGED: same change-sets, another view",
    }.get(a["state"], str(a["state"]))


def _fetch_health(url: str, token_file: Path, timeout: float, ca_file: Path | None) -> dict[str, Any]:
    """GET ``/v1/health`` with the token in ``token_file``; a PocsyncError when that fails or is no health document."""
    token = read_text_arg(token_file, "token")
    if not token or any(c.isspace() for c in token) or not token.isascii():
        raise PocsyncError(
            f"{token_file} does not hold a token (one line, as `pocsync token issue` printed it)",
            reason="bad_token_file",
        )
    req = urllib.request.Request(url.rstrip("/") + "/v1/health", headers={"Authorization": "Bearer " + token})
    ctx = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            h = json.loads(r.read(1 << 22))
    except urllib.error.HTTPError as exc:
        detail = exc.read(4096).decode("utf-8", "replace")
        raise PocsyncError(f"{url} answered HTTP {exc.code}: {detail}", reason="health_http_error") from None
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        raise PocsyncError(f"cannot reach {url}: {getattr(exc, 'reason', None) or exc}", reason="unreachable") from None
    except (ValueError, RecursionError) as exc:
        raise PocsyncError(f"{url} did not answer a health document: {exc}", reason="bad_health_answer") from None
    if not isinstance(h, dict) or "converged" not in h:
        raise PocsyncError(f"{url} did not answer a health document", reason="bad_health_answer")
    return h


def _node_rows(h: dict[str, Any]) -> list[list[Any]]:
    """One row per origin of the health document (the "nodes" table)."""
    return [
        [
            o,
            v["role"],
            _status(v),
            v["head_seq"],
            v["announced_seq"],
            v["lag"],
            v.get("behind"),
            _age(v["last_changeset_age_s"]),
            _age(v["last_contact_age_s"]),
        ]
        for o, v in h["origins"].items()
    ]


def _print_tables(h: dict[str, Any]) -> None:
    """The health document as a header, the software line and tables (nodes, peers, announcements, ...)."""
    console.print(
        f"[bold]{escape(str(h['node']))}[/]  manifest v{escape(str(h['manifest']['version']))} "
        f"(expires in {h['manifest']['expires_in_s'] // 86400} days)  digest {escape(str(h['digest']))}  "
        f"{escape(str(h['entries']))} entries  "
        + ("[green]converged[/]" if h["converged"] else "[red]NOT converged[/]")
    )
    sw = h.get("software") or {}
    console.print(
        f"software pocsync {sw.get('version', '?')}, features: {', '.join(sw.get('features') or []) or 'none'};"
        f" manifest enables: {', '.join(h['manifest'].get('features') or []) or 'none'}",
        markup=False,
    )
    table(
        "nodes",
        ["node", "role", "status", "head", "announced", "lag", "behind", "last change-set", "last contact"],
        _node_rows(h),
    )
    table(
        "peers",
        ["peer", "node", "last pull", "last error"],
        [
            [
                u,
                p["node"],
                _age(time.time() - p["last_pull_ok"]) + " ago" if p["last_pull_ok"] else "never",
                p["last_error"],
            ]
            for u, p in h["peers"].items()
        ],
    )
    table(
        "announcements (what each node last told this one)",
        ["node", "digest", "age", "via", "compared with this node"],
        [[n, a["digest"], _age(a["age_s"]), a["via"], _verdict(a)] for n, a in h.get("announcements", {}).items()],
    )
    counts = (
        [["quarantined", k, v] for k, v in h["quarantined"].items()]
        + [["refused", k, v] for k, v in h["refused"].items()]
        + [["parked", k, v] for k, v in h["parked"].items()]
    )
    if counts:
        table("not applied", ["what", "reason", "count"], counts)
    if h["equivocations"]:
        table("EQUIVOCATIONS", ["origin", "seq"], [[e["origin"], e["seq"]] for e in h["equivocations"]])
    console.print(
        f"mqtt: {'connected' if h['mqtt']['connected'] else 'not connected' if h['mqtt']['configured'] else 'not configured'}"
        f", {h['mqtt']['reconnects']} reconnect(s)"
    )


@click.command("status")
@click.option("--url", required=True, metavar="URL", help="The node's API URL, e.g. https://un.example.org:8443.")
@click.option(
    "--token",
    "token_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="File holding an operator (health) or PoC token.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the health document as JSON.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds to wait for the node."
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate the node's HTTPS certificate chains to (default: the system's trust store).",
)
def status(url: str, token_file: Path, as_json: bool, timeout: float, ca_file: Path | None) -> None:
    """Show a node's sync health.  Exit 1 when not converged or equivocating, 2 when unreachable."""
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
        raise click.BadParameter("must be http(s)://HOST[:PORT]", param_hint="'--url'")
    h = _fetch_health(url, token_file, timeout, ca_file)
    try:  # the answer is another program's: a field missing or of the wrong type is its fault, told in one line
        problems = healthmod.problems(h)
        if not as_json:
            _print_tables(h)
        bad = not h["converged"] or h["equivocations"]
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError, RecursionError, MarkupError) as exc:
        raise PocsyncError(
            f"{url} did not answer a health document this pocsync reads ({type(exc).__name__}: {exc})",
            reason="bad_health_answer",
        ) from None
    if as_json:
        print_json(h)
    else:
        for p in problems:
            err_console.print("[yellow]problem[/]: " + escape(one_line(p)))
    if bad:
        sys.exit(1)
