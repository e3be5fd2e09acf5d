"""ADR 42: a receipt commits with synchronous=NORMAL, and a process crash still loses none of it.

SIGKILL a process receiving change-sets one transaction each (as the daemon does), several times;
every change-set it reported received is in the store after, and the log verifies.  (A power loss,
which NORMAL may cost the last receipts, cannot be simulated here; ADR 42 says why that is safe.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from pocsync.store import Store
from tests.support.fed import T0, Fed, edit, put

ROUNDS = 4
CHANGESETS = 1200


def envelopes(fed: Fed, n: int) -> list[bytes]:
    """``n`` change-sets of eu, signed in memory (one put each)."""
    rep = fed.replica()
    keys = [f"{s}/{k}" for s in ("AUT", "DEU", "FRA", "ITA") for k in ("technical", "diplomatic")]
    out = []
    for i in range(n):
        o = edit(rep, fed, "eu", [put(keys[i % len(keys)], notes=f"receipt {i}")], t=T0 + i)
        env = rep.state.log_envelope("eu", o.seq)
        assert env is not None
        out.append(env)
    return out


def test_sigkill_while_receiving_loses_no_received_changeset(tmp_path: Path) -> None:
    fed = Fed()
    path = tmp_path / "osce.sqlite"
    with Store.create(path, node_id="osce") as s:
        s.install_manifest(fed.manifest, now_ms_=T0)
    lines = tmp_path / "envelopes.jsonl"
    lines.write_bytes(b"\n".join(envelopes(fed, CHANGESETS)))
    rng = random.Random(20261203)
    acked: list[tuple[int, str]] = []
    for r in range(ROUNDS):
        # kill after a chosen number of receipts reported (an event, not a time): the child is then in the
        # middle of a later receipt, at a point that varies with the machine
        want = rng.randint(20, 200)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.receive_loop", str(path), str(lines), str(T0 + CHANGESETS + 10)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        got: list[str] = []
        enough = threading.Event()

        def read(child: subprocess.Popen = child, got: list[str] = got, enough: threading.Event = enough) -> None:
            assert child.stdout is not None
            for ln in child.stdout:
                got.append(ln.decode())
                if len(got) >= want:
                    enough.set()
            enough.set()  # EOF: the child died or finished on its own (checked below)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert enough.wait(60), f"round {r}: {want} receipts not reported within 60 s"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"round {r}: the child exited {child.returncode} on its own"
        round_acked = [(int(s), i) for _, s, i in (ln.split() for ln in got if ln.startswith("ok "))]
        assert len(round_acked) >= want
        acked.extend(round_acked)
    assert len(acked) < CHANGESETS  # the last round was killed mid-stream, not at the end
    with Store.open(path) as store:
        held = dict(store.conn.execute("SELECT seq, id FROM log WHERE origin='eu'").fetchall())
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # a new connection: FULL
        n, problems = store.verify_log()
    lost = [(seq, cs_id) for seq, cs_id in acked if held.get(seq) != cs_id]
    assert not lost, f"{len(lost)} reported receipts lost, e.g. {lost[:3]}"
    assert max(held) >= max(s for s, _ in acked) and n == len(held) and not problems
