"""The chaos harness: a federation of real processes, faults from a recorded seed, invariants after.

Topology (all loopback): one real Mosquitto; nodes ``un``, ``eu``, ``osce``, ``arf`` run as
``pocsync run`` processes. Every byte between them passes a fault-injecting proxy
(tests/support/faultproxy.py): one link per ordered pair of nodes for HTTP pull and pokes
(``http:a>b``: a's requests to b; the nodes pull only from these, ``discover_peers = false``) and one
link per node to the broker (``mqtt:a``). So one node, one direction or two halves can be cut.

A run is a sequence of rounds. Each round's fault schedule is drawn from ``Random(f"{seed}:{round}")``
alone — never from what happened at run time — so a failing seed replays the same schedule (the
timing of a shared machine still varies). In a round, while a workload of puts, deletes and
withdrawals runs at every node (signed into the node's store exactly as the CLI does, and recorded
once ``Store.edit`` returned: acknowledged), faults start and stop at planned times:

``node_kill`` SIGKILL a node, restart it later; ``broker_kill`` the same for Mosquitto;
``partition_node`` cut one node off (refused or black-holed); ``partition_halves`` two halves, the
broker on one side; ``slow_link`` latency, jitter and a bandwidth cap on some links; ``lossy_link``
connection resets on some links; ``clock_jump`` one node's clock (through ``POCSYNC_CLOCK_OFFSET_FILE``,
the node's clock source) jumps forward then back, within ``CLOCK_JUMP_MAX_S``; ``disk_full`` the node
whose data lives on a small tmpfs gets its disk filled (only when this process may mount a tmpfs);
``writer_kill`` a second writer process (tests/chaos/edit_loop.py, as a CLI would be) edits a node
fast and is SIGKILLed mid-work; what it printed as committed counts as acknowledged.

At the end of the round every fault is healed, the workload pauses, and the harness waits for
convergence, then checks the invariants (see :meth:`Chaos.check`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocsync.core import merge
from pocsync.folder.nodedir import NodeDir
from tests.support.broker import Mosquitto, free_port
from tests.support.cli import run
from tests.support.data import SCOPES
from tests.support.faultproxy import Proxy
from tests.support.nodes import Node, entry

NAMES = ("un", "eu", "osce", "arf")
WORK_STATES = {
    "un": ["AUT", "JPN", "UKR", "BRA"],
    "eu": ["AUT", "DEU", "FRA"],
    "osce": ["AUT", "DEU", "UKR"],
    "arf": ["AUS", "IDN", "JPN"],
}
KINDS = ("technical", "diplomatic")
FAULT_KINDS = (
    "node_kill",
    "broker_kill",
    "partition_node",
    "partition_halves",
    "slow_link",
    "lossy_link",
    "clock_jump",
    "disk_full",
    "writer_kill",
)
CLOCK_JUMP_MAX_S = 45  # below request_max_age_seconds (60) and max_clock_skew_seconds (300)
CONVERGE_TIMEOUT_S = 240
RSS_BOUND_MIB = 400
TMPFS_NODE = "arf"
TMPFS_SIZE = "128m"


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def fill_disk(path: Path) -> None:
    """Write ``path`` until the file system holding it has no space left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)


@dataclass
class Ack:
    node: str
    seq: int
    cs_id: str
    hlc: str
    ops: list[tuple[str, str]]  # (op, key), by op index


@dataclass
class Fault:
    at: float
    kind: str
    until: float
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.at:5.1f}-{self.until:5.1f}s {self.kind} {json.dumps(self.params, sort_keys=True)}"


def plan_round(seed: int, n: int, *, length: float, kinds: tuple[str, ...]) -> list[Fault]:
    """The faults of round ``n``: a pure function of (seed, n, length, kinds)."""
    rng = random.Random(f"{seed}:{n}")
    faults = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(kinds)
        at = round(rng.uniform(0, length * 0.6), 1)
        until = round(min(length, at + rng.uniform(3, length * 0.6)), 1)
        node = rng.choice(NAMES)
        p: dict[str, Any] = {}
        if kind in ("node_kill", "partition_node", "clock_jump", "writer_kill"):
            p["node"] = node
        if kind in ("partition_node", "partition_halves"):
            p["mode"] = rng.choice(("refuse", "stall"))
        if kind == "partition_halves":
            names = list(NAMES)
            rng.shuffle(names)
            p["halves"] = [sorted(names[:2]), sorted(names[2:])]
        if kind in ("slow_link", "lossy_link"):
            links = [f"http:{a}>{b}" for a in NAMES for b in NAMES if a != b] + [f"mqtt:{a}" for a in NAMES]
            p["links"] = sorted(rng.sample(links, rng.randint(1, 5)))
        if kind == "slow_link":
            p["latency_ms"] = rng.randint(20, 800)
            p["jitter_ms"] = rng.randint(0, 200)
            p["bandwidth"] = rng.choice((0, 20_000, 100_000, 500_000))
        if kind == "lossy_link":
            p["reset_prob"] = round(rng.uniform(0.01, 0.3), 3)
        if kind == "clock_jump":
            p["forward_s"] = rng.randint(5, CLOCK_JUMP_MAX_S)
            p["back_s"] = -rng.randint(5, CLOCK_JUMP_MAX_S)
        if kind == "disk_full":
            p["node"] = TMPFS_NODE
        faults.append(Fault(at, kind, until, p))
    return sorted(faults, key=lambda f: f.at)


class Workload:
    """Edits at every node, signed into its store as the CLI does; records what was acknowledged."""

    def __init__(self, chaos: Chaos, seed: int) -> None:
        self.chaos = chaos
        self.seed = seed
        self.acks: list[Ack] = []
        self.attempted = 0
        self.errors: Counter = Counter()
        self.error_samples: dict[str, str] = {}
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.idle = {n: threading.Event() for n in NAMES}
        self.threads = [threading.Thread(target=self._loop, args=(n,), daemon=True, name=f"work-{n}") for n in NAMES]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def pause(self) -> None:
        self.running.clear()
        for ev in self.idle.values():
            ev.wait(timeout=120)

    def resume(self) -> None:
        for ev in self.idle.values():
            ev.clear()
        self.running.set()

    def stop(self) -> None:
        self.stopped.set()
        self.running.set()
        for t in self.threads:
            t.join(timeout=60)

    def _ops(self, rng: random.Random, node: str, mine: set[str]) -> list[dict[str, Any]]:
        ops = []
        for _ in range(1 if rng.random() < 0.8 else 2):
            key = f"{rng.choice(WORK_STATES[node])}/{rng.choice(KINDS)}"
            if any(o["key"] == key for o in ops):
                continue
            r = rng.random()
            if r < 0.65 or not mine:
                ops.append({"op": "put", "key": key, "entry": entry(key, notes=f"{node} {rng.randrange(10**9)}")})
            elif r < 0.85:
                ops.append({"op": "delete", "key": rng.choice(sorted(mine))})
            else:
                ops.append({"op": "withdraw", "key": key})
        return [o for i, o in enumerate(ops) if all(o["key"] != p["key"] for p in ops[:i])]

    def _loop(self, node: str) -> None:
        rng = random.Random(f"{self.seed}:work:{node}")
        data = self.chaos.nodes[node].data
        store = None
        mine: set[str] = set()
        while not self.stopped.is_set():
            if not self.running.is_set():
                self.idle[node].set()
                self.running.wait()
                continue
            ops = self._ops(rng, node, mine)
            with self.lock:
                self.attempted += 1
            try:
                nd = NodeDir.open(data)
                if store is None:
                    store = nd.store()
                key = nd.key_for_next_edit(store)
                out = store.edit(ops, key=key, author=f"chaos@{node}", now_ms_=self.chaos.clock_ms(node))
                hlc = store.conn.execute("SELECT hlc FROM log WHERE origin=? AND seq=?", (node, out.seq)).fetchone()[0]
                with self.lock:
                    self.acks.append(Ack(node, out.seq, out.cs_id, hlc, [(o["op"], o["key"]) for o in ops]))
                for o in ops:
                    (mine.add if o["op"] == "put" else mine.discard)(o["key"])
                if out.refused:
                    self.errors["refused_op"] += 1
                    self.error_samples["refused_op"] = str(out.refused[0])
            except Exception as exc:
                kind = f"{type(exc).__name__}:{getattr(exc, 'reason', '')}".rstrip(":")
                self.errors[kind] += 1
                self.error_samples[kind] = str(exc)[:300]
                if store is not None:
                    try:
                        store.close()
                    except Exception:
                        pass
                    store = None
            time.sleep(rng.uniform(0.2, 1.0))
        if store is not None:
            store.close()
        self.idle[node].set()


class Chaos:
    def __init__(
        self, base: Path, seed: int, *, say: Callable[[str], None] = print, kinds: tuple[str, ...] = FAULT_KINDS
    ) -> None:
        self.base = base
        self.seed = seed
        self.say = say
        self.kinds = kinds
        self.faults: Counter = Counter()
        self.violations: list[str] = []
        self.converge: list[float] = []
        self.max_rss: dict[str, float] = {n: 0.0 for n in NAMES}
        self.offsets: dict[str, int] = {n: 0 for n in NAMES}
        self.tmpfs: Path | None = None
        self.tmpfs_note = ""
        self.filler: Path | None = None
        self._sampling = threading.Event()
        self.rounds = 0
        self.writers: dict[str, tuple[subprocess.Popen, threading.Thread, list[str]]] = {}
        self.writer_acks = 0
        self.down: Counter = Counter()

    # -- setup --------------------------------------------------------------------------------
    def clock_ms(self, node: str) -> int:
        return time.time_ns() // 1_000_000 + self.offsets[node]

    def set_clock(self, node: str, offset_s: float) -> None:
        self.offsets[node] = int(offset_s * 1000)
        self.clock_files[node].write_text(str(self.offsets[node]))

    def _try_tmpfs(self, path: Path) -> None:
        path.mkdir(parents=True)
        if "disk_full" not in self.kinds:
            self.tmpfs_note = "disk_full not selected"
            return
        if os.geteuid() != 0:
            self.tmpfs_note = "disabled: mounting a tmpfs needs root"
            return
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            self.tmpfs_note = f"disabled: mount failed: {r.stderr.strip()}"
            return
        self.tmpfs = path
        self.tmpfs_note = f"tmpfs {TMPFS_SIZE} on {TMPFS_NODE}"

    def setup(self) -> Chaos:
        base = self.base
        self.broker = Mosquitto(base / "broker").start()
        self.proxy = Proxy(self.seed)
        ports = {n: free_port() for n in NAMES}
        self.links = {}
        for a in NAMES:
            self.links[f"mqtt:{a}"] = self.proxy.link(f"mqtt:{a}", self.broker.port)
            for b in NAMES:
                if a != b:
                    self.links[f"http:{a}>{b}"] = self.proxy.link(f"http:{a}>{b}", ports[b])
        run("keys", "root-init", "--out", base / "root")
        self.nodes: dict[str, Node] = {}
        self.clock_files = {n: base / f"{n}.clock" for n in NAMES}
        for n in NAMES:
            data = base / "data" / n
            if n == TMPFS_NODE:
                self._try_tmpfs(data)
            args = [
                "init",
                "--node",
                n,
                "--data",
                data,
                "--listen",
                f"127.0.0.1:{ports[n]}",
                "--mqtt",
                f"mqtt://127.0.0.1:{self.links[f'mqtt:{n}'].port}",
            ]
            for b in NAMES:
                if b != n:
                    args += ["--peer", self.links[f"http:{n}>{b}"].url]
            run(*args)
            toml = data / "sync.toml"
            text = toml.read_text().replace("pull_interval_seconds = 30", "pull_interval_seconds = 3")
            text = text.replace("[sync]\n", "[sync]\ndiscover_peers = false\n")
            text = text.replace("keepalive_seconds = 30", "keepalive_seconds = 10")
            text = text.replace("reconnect_max_seconds = 30", "reconnect_max_seconds = 5")
            text = text.replace("http_timeout_seconds = 15", "http_timeout_seconds = 10")
            toml.write_text(text)
            info = json.loads(run("node-info", "--data", data).output)
            (base / f"{n}.info.json").write_text(json.dumps(info))
            self.clock_files[n].write_text("0")
            self.nodes[n] = Node(n, data, ports[n], env={"POCSYNC_CLOCK_OFFSET_FILE": str(self.clock_files[n])})
        manifest = base / "manifest.json"
        run("manifest", "create", "--out", manifest, "--root-pub", base / "root" / "root.pub")
        for n in NAMES:
            run(
                "manifest",
                "add-node",
                manifest,
                "--node-info",
                base / f"{n}.info.json",
                "--role",
                "un" if n == "un" else "regional",
                "--scope",
                SCOPES[n],
            )
        run("manifest", "sign", manifest, "--key", base / "root" / "root.key")
        for n in NAMES:
            run("manifest", "install", "--data", self.nodes[n].data, manifest)
        for node in self.nodes.values():
            node.start()
        threading.Thread(target=self._sample_rss, daemon=True, name="rss").start()
        self.work = Workload(self, self.seed)
        self.work.start()
        return self

    def _sample_rss(self) -> None:
        while not self._sampling.wait(1.0):
            for n, node in self.nodes.items():
                if node.proc is not None:
                    self.max_rss[n] = max(self.max_rss[n], rss_mib(node.proc.pid))

    def teardown(self) -> None:
        self._sampling.set()
        if hasattr(self, "work"):
            self._kill_writers()
            self.work.stop()
        for node in getattr(self, "nodes", {}).values():
            node.stop()
        if hasattr(self, "proxy"):
            self.proxy.close()
        if hasattr(self, "broker"):
            self.broker.stop()
        if self.tmpfs is not None:
            subprocess.run(["umount", "-l", str(self.tmpfs)], capture_output=True)
            self.tmpfs = None

    # -- faults -------------------------------------------------------------------------------
    def _links_of(self, node: str) -> list[str]:
        return (
            [f"mqtt:{node}"]
            + [f"http:{node}>{b}" for b in NAMES if b != node]
            + [f"http:{a}>{node}" for a in NAMES if a != node]
        )

    def _restart(self, node: Node) -> None:
        for attempt in range(3):
            try:
                node.start()
                return
            except AssertionError as exc:
                self.violations.append(
                    f"round {self.rounds}: {node.name} did not start (attempt {attempt + 1}): {str(exc)[-800:]}"
                )
                node.stop()
                time.sleep(2)

    def start_fault(self, f: Fault) -> None:
        p = f.params
        self.faults[f.kind] += 1
        if f.kind == "node_kill":  # overlapping kills of one node: it stays down until the last one ends
            self.down[p["node"]] += 1
            self.nodes[p["node"]].kill()
        elif f.kind == "broker_kill":
            self.down["broker"] += 1
            self.broker.kill()
        elif f.kind == "partition_node":
            for name in self._links_of(p["node"]):
                self.links[name].set(mode=p["mode"])
        elif f.kind == "partition_halves":
            h1, h2 = p["halves"]
            for a in h1:
                for b in h2:
                    self.links[f"http:{a}>{b}"].set(mode=p["mode"])
                    self.links[f"http:{b}>{a}"].set(mode=p["mode"])
            for b in h2:
                self.links[f"mqtt:{b}"].set(mode=p["mode"])
        elif f.kind == "slow_link":
            for name in p["links"]:
                self.links[name].set(latency_ms=p["latency_ms"], jitter_ms=p["jitter_ms"], bandwidth=p["bandwidth"])
        elif f.kind == "lossy_link":
            for name in p["links"]:
                self.links[name].set(reset_prob=p["reset_prob"])
        elif f.kind == "clock_jump":
            self.set_clock(p["node"], p["forward_s"])
        elif f.kind == "writer_kill":
            self._start_writer(p["node"])
        elif f.kind == "disk_full":
            if self.tmpfs is None:
                self.faults[f.kind] -= 1
                return
            self.filler = self.tmpfs / "filler"
            fill_disk(self.filler)

    def mid_fault(self, f: Fault) -> None:
        if f.kind == "clock_jump":
            self.set_clock(f.params["node"], f.params["back_s"])

    def end_fault(self, f: Fault) -> None:
        p = f.params
        if f.kind == "node_kill":
            self.down[p["node"]] -= 1
            if self.down[p["node"]] == 0:
                self._restart(self.nodes[p["node"]])
        elif f.kind == "broker_kill":
            self.down["broker"] -= 1
            if self.down["broker"] == 0 and self.broker.proc is None:
                self.broker.start()
        elif f.kind in ("partition_node", "partition_halves", "slow_link", "lossy_link"):
            pass  # healed at the end of the round (links may carry several faults)
        elif f.kind == "clock_jump":
            self.set_clock(p["node"], 0)
        elif f.kind == "disk_full":
            self._free_disk()
        elif f.kind == "writer_kill":
            self._kill_writers()

    def _start_writer(self, node: str) -> None:
        """A second writer process at ``node`` (as a CLI would be), SIGKILLed at the end of the fault;
        what it printed as committed counts as acknowledged."""
        if node in self.writers:
            return
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chaos.edit_loop",
                str(self.nodes[node].data),
                f"writer-{self.rounds}",
                WORK_STATES[node][0],
                "0.03",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1", "POCSYNC_CLOCK_OFFSET_FILE": str(self.clock_files[node])},
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(ln.decode() for ln in proc.stdout), daemon=True)
        reader.start()
        self.writers[node] = (proc, reader, lines)

    def _kill_writers(self) -> None:
        for node, (proc, reader, lines) in list(self.writers.items()):
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            reader.join(timeout=30)
            key = f"{WORK_STATES[node][0]}/technical"
            with self.nodes[node].store() as s:
                for ln in lines:
                    if ln.startswith("ok "):
                        _, seq, cs_id = ln.split()
                        row = s.conn.execute(
                            "SELECT hlc, id FROM log WHERE origin=? AND seq=?", (node, int(seq))
                        ).fetchone()
                        with self.work.lock:
                            # hlc from the log: if the row is missing the check reports the edit as lost
                            self.work.acks.append(Ack(node, int(seq), cs_id, row["hlc"] if row else "", [("put", key)]))
            self.writer_acks += sum(ln.startswith("ok ") for ln in lines)
            del self.writers[node]

    def _free_disk(self) -> None:
        if self.filler is not None:
            self.filler.unlink(missing_ok=True)
            self.filler = None

    def heal_all(self) -> None:
        self.down.clear()
        self._kill_writers()
        self.proxy.heal_all()
        for n in NAMES:
            self.set_clock(n, 0)
        self._free_disk()
        if self.broker.proc is None or self.broker.proc.poll() is not None:
            self.broker.proc = None
            self.broker.start()
        for node in self.nodes.values():
            if node.proc is None or node.proc.poll() is not None:
                if node.proc is not None:
                    self.violations.append(
                        f"round {self.rounds}: {node.name} exited by itself "
                        f"(code {node.proc.returncode}):\n{node.log.read_text()[-1500:]}"
                    )
                node.proc = None
                self._restart(node)

    # -- a round ------------------------------------------------------------------------------
    def run_round(self, n: int, length: float) -> None:
        self.rounds = n
        plan = plan_round(self.seed, n, length=length, kinds=self.kinds)
        self.say(f"round {n}: " + "; ".join(f.describe() for f in plan))
        events: list[tuple[float, int, str, Fault]] = []
        for i, f in enumerate(plan):
            events.append((f.at, i, "start", f))
            if f.kind == "clock_jump":
                events.append(((f.at + f.until) / 2, i, "mid", f))
            events.append((f.until, i, "end", f))
        events.sort(key=lambda e: (e[0], e[1], e[2] != "start"))
        self.work.resume()
        t0 = time.monotonic()
        for at, _, what, f in events:
            delay = at - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            try:
                {"start": self.start_fault, "mid": self.mid_fault, "end": self.end_fault}[what](f)
            except Exception as exc:
                self.violations.append(f"round {n}: {what} {f.kind} failed: {exc!r}")
        rest = length - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)
        self.work.pause()
        self.heal_all()
        t_heal = time.monotonic()
        ok = self.wait_converged(CONVERGE_TIMEOUT_S)
        took = time.monotonic() - t_heal
        if ok:
            self.converge.append(took)
            self.say(f"round {n}: converged {took:.1f} s after the faults stopped")
        else:
            self.violations.append(
                f"round {n}: not converged {CONVERGE_TIMEOUT_S} s after the faults stopped: {self.digests()}"
            )
        self.check(n)

    # -- invariants ---------------------------------------------------------------------------
    def digests(self) -> dict[str, str]:
        out = {}
        for n, node in self.nodes.items():
            try:
                out[n] = node.digest()
            except Exception as exc:
                out[n] = f"error: {exc}"
        return out

    def _heads_complete(self) -> bool:
        want: dict[str, int] = {}
        for a in self.work.acks:
            want[a.node] = max(want.get(a.node, 0), a.seq)
        for node in self.nodes.values():
            with node.store() as s:
                heads = s.heads()
            if any(heads.get(o) is None or heads[o].seq < seq for o, seq in want.items()):
                return False
        return True

    def wait_converged(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.digests()
            if len(set(d.values())) == 1 and self._heads_complete():
                return True
            time.sleep(0.5)
        return False

    def expected_view(self) -> dict[str, str]:
        """The merge of every acknowledged edit (PROTOCOL.md §8), computed here independently."""
        latest: dict[tuple[str, str], merge.Assertion] = {}
        withdrawals: dict[str, merge.Assertion] = {}
        for a in sorted(self.work.acks, key=lambda a: (a.node, a.seq)):
            for idx, (op, key) in enumerate(a.ops):
                asr = merge.Assertion(key, a.node, op, a.hlc, a.cs_id, idx, a.seq, "")
                latest[(a.node, key)] = asr
                if op == "withdraw":
                    withdrawals[key] = merge.greater_withdrawal(withdrawals.get(key), asr)
        keys = {k for _, k in latest}
        view = {}
        for key in keys:
            w = merge.winner([v for (o, k), v in latest.items() if k == key], withdrawals.get(key))
            if w is not None and w.op == "put":
                view[key] = w.ref
        return view

    def check(self, n: int) -> None:
        """Every acknowledged edit in every log; the view is the merge of the acknowledged edits;
        no proof, quarantine, refusal or parked change-set; RSS under the bound."""
        acked = {(a.node, a.seq): a.cs_id for a in self.work.acks}
        expected = self.expected_view()
        lost: set[tuple[str, int]] = set()
        for name, node in self.nodes.items():
            with node.store() as s:
                logged = {(r["origin"], r["seq"]): r["id"] for r in s.conn.execute("SELECT origin, seq, id FROM log")}
                view = {
                    r["key"]: f"{r['cs_id']}#{r['idx']}" for r in s.conn.execute("SELECT key, cs_id, idx FROM view")
                }
                extra = [k for k in logged if k not in acked]
                for k, cs_id in acked.items():
                    if logged.get(k) != cs_id:
                        lost.add(k)
                        self.violations.append(
                            f"round {n}: {name} lacks acknowledged {k[0]} seq {k[1]} ({cs_id}); has {logged.get(k)}"
                        )
                if extra:  # committed but never acknowledged (e.g. an error after commit): not lost, but noted
                    self.violations.append(f"round {n}: {name} holds change-sets never acknowledged: {extra[:5]}")
                elif view != expected:
                    diff = sorted(k for k in set(view) | set(expected) if view.get(k) != expected.get(k))
                    self.violations.append(
                        f"round {n}: {name} view differs from the merge of the acknowledged edits at {diff[:5]}"
                    )
                for table in ("proofs", "quarantine", "refused", "parked"):
                    cnt = s.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    if cnt:
                        rows = [dict(r) for r in s.conn.execute(f"SELECT * FROM {table} LIMIT 3")]
                        for r in rows:
                            for k in ("envelope", "a", "b"):
                                r.pop(k, None)
                        self.violations.append(f"round {n}: {name} has {cnt} row(s) in {table}: {rows}")
                verify = s.verify_log()
                if verify[1]:
                    self.violations.append(f"round {n}: {name} log verify: {verify[1][:3]}")
        self.lost = lost
        for name, mib in self.max_rss.items():
            if mib > RSS_BOUND_MIB:
                self.violations.append(f"round {n}: {name} RSS {mib:.0f} MiB > {RSS_BOUND_MIB} MiB")

    # -- a whole run ----------------------------------------------------------------------------
    def soak(self, seconds: float, *, round_s: tuple[float, float] = (20, 40)) -> dict[str, Any]:
        end = time.monotonic() + seconds
        n = 0
        self.lost = set()
        while n == 0 or time.monotonic() < end:
            n += 1
            length = random.Random(f"{self.seed}:{n}:len").uniform(*round_s)
            self.run_round(n, length)
            if self.violations and os.environ.get("CHAOS_STOP_ON_VIOLATION"):
                break
        return self.summary(n)

    def summary(self, rounds: int) -> dict[str, Any]:
        conv = sorted(self.converge)
        return {
            "seed": self.seed,
            "rounds": rounds,
            "faults": dict(sorted(self.faults.items())),
            "edits": self.work.attempted + self.writer_acks,
            "acknowledged": len(self.work.acks),
            "acknowledged_by_killed_writers": self.writer_acks,
            "lost": len(self.lost),
            "edit_errors": dict(self.work.errors),
            "edit_error_samples": self.work.error_samples,
            "converge_s": {
                "median": round(statistics.median(conv), 1) if conv else None,
                "max": round(max(conv), 1) if conv else None,
                "n": len(conv),
            },
            "max_rss_mib": round(max(self.max_rss.values()), 1),
            "rss_mib": {k: round(v, 1) for k, v in self.max_rss.items()},
            "disk": self.tmpfs_note,
            "clock_jump_max_s": CLOCK_JUMP_MAX_S,
            "violations": len(self.violations),
            "violation_samples": self.violations[:10],
        }
