"""Benchmark: propagation latency and core throughput, next to this machine's own limits.

    .venv/bin/python -m tests.benchmarks.bench_sync [--out FILE] [--edits N] [--history N]

Writes JSON.  Figures, not pass/fail: nothing here asserts a time.  Machine limits measured in the
same run: SQLite commits per second with synchronous=FULL on this disk (the ceiling of local edits),
Ed25519 verifications per second (the ceiling of acceptance), CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def machine_limits(tmp: Path) -> dict:
    db = sqlite3.connect(tmp / "fsync.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x)")
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (n,))
        db.execute("COMMIT")
        n += 1
    commits = n / (time.perf_counter() - t0)
    key = Ed25519PrivateKey.generate()
    sig, pub = key.sign(b"x" * 800), key.public_key()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        pub.verify(sig, b"x" * 800)
        n += 1
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite_full_sync_commits_per_s": round(commits),
        "ed25519_verifies_per_s": round(n / (time.perf_counter() - t0)),
    }


def core_throughput(history: int) -> dict:
    from tests.support.fed import T0, Fed, edit, put

    fed = Fed()
    src = fed.replica()
    t0 = time.perf_counter()
    for i in range(history):
        edit(src, fed, "eu", [put("DEU/technical", notes=f"r{i}")], t=T0 + i)
    sign_s = time.perf_counter() - t0
    envs = src.state.all_log()
    dst = fed.replica()
    t0 = time.perf_counter()
    for e in reversed(envs):  # worst order: every one parks until the first arrives
        dst.receive(e, now_ms=T0 + history + 1)
    recv_s = time.perf_counter() - t0
    return {
        "changesets": history,
        "memory_edit_per_s": round(history / sign_s),
        "memory_receive_reverse_order_per_s": round(history / recv_s),
    }


def propagation(base: Path, edits: int, mqtt: bool) -> dict:
    from tests.support.broker import Mosquitto
    from tests.support.cli import run
    from tests.support.nodes import Federation, entry

    broker = Mosquitto(base / "broker").start() if mqtt else None
    fed = Federation(base, ("un", "eu", "osce", "arf"), mqtt=broker.url if broker else "", pull_interval=3600)
    lat, status = [], []
    try:
        fed.start()
        fed.wait_converged()
        op = run("token", "issue", "--data", fed["un"].data, "--operator", "bench").output.strip()
        for i in range(edits):
            t0 = time.perf_counter()
            fed["eu"].put(entry("DEU/technical", notes=f"edit {i}"))
            target = fed["eu"].digest()
            while any(fed[n].digest() != target for n in ("un", "osce", "arf")):
                time.sleep(0.005)
            lat.append(time.perf_counter() - t0)
            t1 = time.perf_counter()  # how long un's health (status, dashboard) takes to say so
            while not health_converged(fed["un"].url, op):
                time.sleep(0.02)
            status.append(time.perf_counter() - t1)
    finally:
        fed.stop()
        if broker:
            broker.stop()
    lat.sort()
    status.sort()
    return {
        "transport": "mqtt" if mqtt else "http-poke",
        "edits": edits,
        "edit_to_all_nodes_s": {
            "median": round(statistics.median(lat), 3),
            "p90": round(lat[int(0.9 * (len(lat) - 1))], 3),
            "max": round(lat[-1], 3),
        },
        "status_after_convergence_s": {"median": round(statistics.median(status), 3), "max": round(status[-1], 3)},
        "note": "from starting the `pocsync entry put` process to the digest changing at the three other nodes;"
        " then until un's /v1/health says converged (target: 2 s)",
    }


def health_converged(url: str, token: str) -> bool:
    import urllib.request

    req = urllib.request.Request(url + "/v1/health", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return bool(json.loads(r.read())["converged"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--history", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        result = {
            "benchmark": "pocsync.sync",
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine_limits(base),
            "core": core_throughput(args.history),
            "propagation": [
                propagation(base / "mqtt", args.edits, True),
                propagation(base / "http", args.edits, False),
            ],
        }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[2]))
    main()
