"""What ``pocsync demo`` shows (:class:`pocsync.demo.run.Demo`): the live table of nodes and their
heads, the convergence verdict, the "try it" panel with URLs and token files, and — once the nodes
converged — what a PoC token and an operator token see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pocsync.demo.run import Demo

NODES = ("un", "eu", "osce", "arf")


def render(demo: Demo, state: dict[str, dict[str, Any]], title: str) -> Group:
    """The live view; fits a 120×50 terminal (tests/integration/test_demo_view.py)."""
    t = Table(title=title, expand=True, box=box.SIMPLE_HEAD, padding=(0, 1))
    for c in ("node", "url", "entries", *(f"{o} seq" for o in NODES), "view digest"):
        t.add_column(c)
    agree = demo.stores_agree(state)
    for name, v in state.items():
        t.add_row(
            name,
            demo.nodes[name].url,
            str(v["entries"]),
            *(str(v["heads"].get(o, 0)) for o in NODES),
            Text(v["digest"][7:23] + "…", style="green" if agree else "yellow"),
        )
    verdict, style = demo.verdict(state)
    parts: list[Any] = [demo.try_it(), t, Text(verdict, style=style)]
    events = demo.events[-(4 if demo.findings else 8) :]
    parts.append(Panel("\n".join(events), title="change-sets flowing", height=len(events) + 2))
    return Group(*parts, *demo.findings)


def try_it(demo: Demo) -> Panel:
    """The URLs of the PoC page, the dashboard and the status command, with the token files to use."""
    lines = Text.assemble(
        ("PoC page:   ", "bold"),
        (
            f"{demo.nodes['eu'].url}/   token in {demo.base / 'poc.token'}"
            + ("" if demo.poc_token else " (once eu lists AUT/technical)")
            + "\n",
            "",
        ),
        ("Dashboard:  ", "bold"),
        (f"{demo.nodes['un'].url}/dashboard   token in {demo.base / 'operator.token'}\n", ""),
        ("Status:     ", "bold"),
        (f"pocsync status --url {demo.nodes['un'].url} --token {demo.base / 'operator.token'}", ""),
    )
    return Panel(lines, title="try it (Ctrl-C stops every node)")


def findings(demo: Demo) -> list[RenderableType]:
    """After convergence: the merged directory as a PoC token reads it at osce, the divergence report,
    and an operator token refused entries but reading health (which becomes the demo's health_doc)."""
    return [merged_listing(demo), divergence_report(demo), operator_line(demo)]


def merged_listing(demo: Demo) -> Table:
    poc = demo.poc_token
    status, listing = demo.get("osce", "/v1/entries", poc)
    t = Table(
        title=f"a PoC token (AUT/technical, issued by eu) reads the merged directory at osce: HTTP {status}",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    for c in ("key", "organisation", "person / position", "listed by", "winning origin"):
        t.add_column(c)
    _, networks = demo.get("osce", "/v1/networks", poc)
    listed = {}
    for state, kinds in (networks.get("networks") or {}).items():
        for kind, origins in kinds.items():
            listed[f"{state}/{kind}"] = ", ".join(origins)
    for row in listing.get("entries", []):
        e = row["entry"]
        t.add_row(
            row["key"],
            e["organisation"],
            e.get("person") or e.get("position", ""),
            listed.get(row["key"], ""),
            row["provenance"]["origin"],
        )
    return t


def divergence_report(demo: Demo) -> Table:
    _, div = demo.get("un", "/v1/divergences", demo.poc_token)
    title = "divergence report: directories that disagree (for the secretariats to fix)"
    d = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), min_width=len(title))  # one line, not two
    for c in ("key", "field", "values by directory"):
        d.add_column(c)
    for item in div.get("divergences", []):
        for f, by in item["fields"].items():
            d.add_row(item["key"], f, " | ".join(f"{o}: {v}" for o, v in by.items()))
    return d


def operator_line(demo: Demo) -> Text:
    op = demo.op_token
    refused, _ = demo.get("un", "/v1/entries", op)
    health, h = demo.get("un", "/v1/health", op)
    demo.health_doc = h
    return Text.assemble(
        ("operator token asking for entries: ", ""),
        (f"HTTP {refused} (refused)", "bold red" if refused == 403 else "bold"),
        (
            f"; the same token reads health: HTTP {health}, "
            + ("converged" if h.get("converged") else "NOT converged"),
            "",
        ),
    )
