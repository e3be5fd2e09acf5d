"""``pocsync demo``: a whole federation on this machine, shown live.

A generated root key and manifest; a UN node and three regional nodes (eu, osce, arf), each its own
process with its own store; an invented directory edited at different nodes (with a conflict on one
key); then, live in the terminal, change-sets flowing, digests converging, the divergence report, a
PoC token reading the merged directory, an operator token refused entry data, and the URLs of the PoC
page and the dashboard with ready tokens.  Uses a broker when given one (``--mqtt``), HTTP otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel

from pocsync import tokens
from pocsync.core import manifest as mf
from pocsync.core import opkinds
from pocsync.core.keys import ed25519_public_b64
from pocsync.demo import view as live_view
from pocsync.demo.data import ORGS, SCENARIO, SCOPES
from pocsync.directory import intake
from pocsync.errors import PocsyncError
from pocsync.folder import keyfiles
from pocsync.folder.nodedir import NodeDir
from pocsync.store import Store, queries

NODES = live_view.NODES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DemoNode:
    name: str
    nd: NodeDir
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/node", timeout=0.5) as r:
                return bool(r.status == 200)
        except OSError:
            return False


@dataclass
class Demo:
    base: Path
    mqtt: str = ""
    console: Console = field(default_factory=Console)
    nodes: dict[str, DemoNode] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    seen: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    findings: list[Any] = field(default_factory=list)
    health_doc: dict[str, Any] = field(default_factory=dict)
    poc_token: str = ""
    op_token: str = ""

    # --- set-up ------------------------------------------------------------------------
    def setup(self) -> None:
        root = Ed25519PrivateKey.generate()
        keyfiles.write_private(self.base / "root" / "root.key", root)
        payload = mf.new_payload(
            [ed25519_public_b64(root)],
            threshold=1,
            expires_s=int(time.time()) + 90 * 86_400,
            features=sorted(set(opkinds.FEATURES) - opkinds.OPT_IN_FEATURES),
        )  # as `manifest create` does: held changes are opt-in (they would hold the demo's conflict)
        for n in NODES:
            port = free_port()
            nd = NodeDir.init(
                self.base / n, node_id=n, organisation=ORGS[n], listen=f"127.0.0.1:{port}", mqtt_url=self.mqtt
            )
            toml = nd.config.path
            toml.write_text(toml.read_text().replace("pull_interval_seconds = 30", "pull_interval_seconds = 5"))
            nd = NodeDir.open(self.base / n)
            self.nodes[n] = DemoNode(n, nd, port)
            payload = mf.add_node(
                payload, nd.node_info(), role="un" if n == "un" else "regional", scope=mf.parse_scope(SCOPES[n])
            )
        manifest = mf.sign(mf.unsigned(payload), root)
        (self.base / "manifest.json").write_bytes(manifest.to_bytes())
        for node in self.nodes.values():
            with node.nd.store() as s:
                s.install_manifest(manifest)
        self.event(f"root key and manifest v1 with {len(NODES)} nodes written to {self.base}")
        self.publish_templates()

    def publish_templates(self) -> None:
        """The UN node signs the shipped communication templates (PROTOCOL.md §18), as `template publish --shipped`."""
        from pocsync.directory.shipped_templates import shipped

        nd = self.nodes["un"].nd
        ops = [{"op": "template", "key": tid, "template": doc} for tid, doc in sorted(shipped().items())]
        with nd.store() as s:
            out = s.edit(ops, key=nd.key_for_next_edit(s), author="demo@un")
        self.event(f"[bold]un[/] signs change-set seq {out.seq}: {len(ops)} communication templates (en, fr, es)")

    def start(self) -> None:
        for node in self.nodes.values():
            node.log = self.base / f"{node.name}.log"
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "pocsync.cli.main", "run", "--data", str(node.nd.config.base)],
                stdout=open(node.log, "ab"),
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not all(n.up() for n in self.nodes.values()):
            if time.monotonic() > deadline:
                raise PocsyncError("the demo nodes did not start; see the logs in " + str(self.base))
            time.sleep(0.2)
        self.event(
            "four nodes running: "
            + ", ".join(f"{n.name} {n.url}" for n in self.nodes.values())
            + (f" with broker {self.mqtt}" if self.mqtt else " (HTTP pull, no broker)")
        )

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.proc and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.proc:
                try:
                    node.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()

    # --- the scenario ----------------------------------------------------------------------
    def event(self, text: str) -> None:
        self.events.append(f"{datetime.now().strftime('%H:%M:%S')}  {text}")

    def edit(self, node: str, label: str, entries: list[dict[str, Any]]) -> None:
        today = datetime.now(UTC).date().isoformat()
        ops = []
        for e in entries:
            clean, _ = intake.validate_entry(e, today_iso=today)
            ops.append({"op": "put", "key": intake.entry_key(clean), "entry": clean})
        nd = self.nodes[node].nd
        with nd.store() as s:
            out = s.edit(ops, key=nd.key_for_next_edit(s), author=f"demo@{node}")
        self.event(f"[bold]{node}[/] signs change-set seq {out.seq} ({len(ops)} ops): {label}")
        self.issue_tokens()

    def poll(self) -> dict[str, dict[str, Any]]:
        """Per node: digest, heads, entries; new arrivals become events."""
        state = {}
        for name, node in self.nodes.items():
            with Store.open(node.nd.config.store_path) as s:
                heads = {o: h.seq for o, h in s.heads().items()}
                rows = queries.arrivals(s.conn)
                state[name] = {"digest": s.digest(), "heads": heads, "entries": len(s.entries())}
            seen = self.seen.setdefault(name, set())
            for r in rows:
                k = (r["origin"], r["seq"])
                if k not in seen:
                    seen.add(k)
                    if r["origin"] != name:
                        how = r["source"].split(":")[0] or "?"
                        self.event(f"{name} accepts {r['origin']} seq {r['seq']} via {how}")
        return state

    def view(self, state: dict[str, dict[str, Any]], title: str) -> Group:
        """The live view; fits a 120×50 terminal (tests/integration/test_demo_view.py)."""
        return live_view.render(self, state, title)

    @staticmethod
    def stores_agree(state: dict[str, dict[str, Any]]) -> bool:
        return len({v["digest"] for v in state.values()}) == 1 and all(v["entries"] for v in state.values())

    def verdict(self, state: dict[str, dict[str, Any]]) -> tuple[str, str]:
        """One reading of convergence: the stores agree AND the UN node's health says converged."""
        if not self.stores_agree(state):
            return "converging…", "bold yellow"
        h = self.health_doc
        if h.get("converged"):
            return "converged: every node holds the same view, and un's health (status, dashboard) agrees", "bold green"
        return "every store holds the same view; waiting for un's health to hear it from every node…", "bold yellow"

    def try_it(self) -> Panel:
        return live_view.try_it(self)

    def refresh_health(self) -> dict[str, Any]:
        try:
            self.health_doc = self.get("un", "/v1/health", self.op_token)[1]
        except OSError:
            self.health_doc = {}
        return self.health_doc

    def issue_tokens(self) -> None:
        """The operator token first, so the view shows where it is while the demo runs; the PoC token as
        soon as eu lists AUT/technical (a PoC token never predates its holder's entry)."""
        if not self.op_token:
            self.op_token = self.token("un", operator="demo-operator", days=30)
            self._write("operator.token", self.op_token)
        if not self.poc_token:
            with self.nodes["eu"].nd.store() as s:
                listed = s.entry("AUT/technical") is not None
            if listed:
                self.poc_token = self.token("eu", poc="AUT/technical")
                self._write("poc.token", self.poc_token)

    def _write(self, name: str, token: str) -> None:
        path = self.base / name
        path.write_text(token)
        path.chmod(0o600)

    # --- what a PoC and an operator see --------------------------------------------------------
    def token(self, node: str, *, poc: str | None = None, operator: str | None = None, days: int = 1) -> str:
        nd = self.nodes[node].nd
        sub, scope = (poc, "directory") if poc else (f"operator:{operator}", "health")
        tok = tokens.issue_token(
            issuer=node,
            kid=nd.config.node.token_kid,
            key=nd.token_key(),
            subject=sub,
            scope=scope,
            now_s=int(time.time()),
            ttl_s=days * 86_400,
        )
        with nd.store() as s:
            s.audit(actor="demo", action="token.issue", target=sub, result="ok")
        return tok

    def get(self, node: str, path: str, token: str) -> tuple[int, Any]:
        req = urllib.request.Request(self.nodes[node].url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def findings_after_convergence(self) -> None:
        self.findings = live_view.findings(self)


def run_demo(
    *,
    mqtt: str = "",
    duration: float | None = None,
    keep: bool = False,
    directory: Path | None = None,
    console: Console | None = None,
) -> int:
    base = directory or Path(tempfile.mkdtemp(prefix="pocsync-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    demo = Demo(base, mqtt=mqtt, console=console or Console())
    console = demo.console
    converged = False
    started = time.monotonic()

    def interrupted(signum: int, _frame: Any) -> None:  # kill (SIGTERM) or a closed terminal (SIGHUP)
        raise KeyboardInterrupt

    stopping = False
    previous = {s: signal.signal(s, interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        demo.setup()
        demo.start()
        demo.issue_tokens()
        if not console.is_terminal:  # a pipe or a log file: Live shows nothing until the end, so say it now
            _print_try_it(demo, console)
        with Live(
            demo.view(demo.poll(), "pocsync demo"),
            console=console,
            refresh_per_second=4,
            transient=False,
            vertical_overflow="crop",
        ) as live:
            converged = _converge(demo, live, started=started, duration=duration)
            _linger(demo, live, converged, started=started, duration=duration, keep=keep)
    except KeyboardInterrupt:
        stopping = True
    finally:
        _stop(demo, console, previous, stopping=stopping)
    final = {n: s["digest"] for n, s in demo.poll().items()} if demo.nodes else {}
    converged = converged and bool(final) and len(set(final.values())) == 1
    console.print(
        ("[bold green]converged[/]: all four nodes hold view " + next(iter(final.values())))
        if converged
        else "[bold red]NOT converged[/]: " + json.dumps(final)
    )
    console.print(f"everything the demo made is in {base}")
    return 0 if converged else 1


def _print_try_it(demo: Demo, console: Console) -> None:
    """The URLs and tokens to try, printed at once (on a pipe Live would show nothing until the end)."""
    console.width = max(console.width, 200)  # and never split a URL or a token path over two lines
    for line in demo.try_it().renderable.plain.splitlines():  # type: ignore[union-attr]
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    console.file.flush()


def _converge(demo: Demo, live: Live, *, started: float, duration: float | None) -> bool:
    """Play the scenario, then watch until the nodes converge (or time runs out): whether they converged."""
    converged = False
    for node, label, entries in SCENARIO:
        demo.edit(node, label, entries)
        for _ in range(4):
            live.update(demo.view(demo.poll(), "pocsync demo"))
            time.sleep(0.25)
    limit = duration if duration is not None else 60
    while time.monotonic() - started < limit:
        state = demo.poll()
        if demo.stores_agree(state):
            demo.refresh_health()
        live.update(demo.view(state, "pocsync demo"))
        if demo.stores_agree(state) and demo.health_doc.get("converged"):
            converged = True
            break
        time.sleep(0.25)
    return converged


def _linger(demo: Demo, live: Live, converged: bool, *, started: float, duration: float | None, keep: bool) -> None:
    """After convergence: the findings; then keep running (``keep``) or until ``duration`` is over."""
    if converged:
        demo.findings_after_convergence()
        live.update(demo.view(demo.poll(), "pocsync demo"))
    if keep:
        demo.event("running — explore the URLs above; Ctrl-C stops every node")
        while True:
            time.sleep(1)
            state = demo.poll()
            demo.refresh_health()
            live.update(demo.view(state, "pocsync demo"))
    while duration is not None and time.monotonic() - started < duration:
        live.update(demo.view(demo.poll(), "pocsync demo"))
        time.sleep(0.5)


def _stop(demo: Demo, console: Console, previous: dict[signal.Signals, Any], *, stopping: bool) -> None:
    """Stop every node, with Ctrl-C and kill ignored meanwhile, then restore the signal handlers."""
    if not console.is_terminal:
        console.line()  # Live leaves its last frame without a line end on a pipe
    if stopping:
        console.print("stopping every node…")
    previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    for s in previous:
        signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C or kill must not cut the nodes' shutdown short
    try:
        demo.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
