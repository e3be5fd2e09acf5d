"""A crash loses no acknowledged edit: SIGKILL a writer in a loop, then check the log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pocsync.folder.nodedir import NodeDir
from tests.support.cli import LocalFederation, run

ROUNDS = 8


def test_sigkill_in_a_loop_of_edits_loses_no_acknowledged_edit(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, nodes=("eu",))
    data = fed.data("eu")
    acked: list[tuple[int, str]] = []
    rng = random.Random(20261122)
    for r in range(ROUNDS):
        child = subprocess.Popen([sys.executable, "-m", "tests.chaos.edit_loop", str(data), f"round{r}"],
                                 stdout=subprocess.PIPE, cwd=Path(__file__).parents[2],
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(ln.decode() for ln in child.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:  # wait for the first commit, then let it run a while
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        acked.extend((int(s), i) for _, s, i in (ln.split() for ln in lines if ln.startswith("ok ")))
    assert len(acked) > ROUNDS, "the writer committed too few edits to test anything"
    with NodeDir.open(data).store() as store:
        for seq, cs_id in acked:
            row = store.conn.execute("SELECT id FROM log WHERE origin='eu' AND seq=?", (seq,)).fetchone()
            assert row is not None and row[0] == cs_id, f"acknowledged edit seq {seq} lost"
        head = store.heads()["eu"].seq
    assert head >= max(s for s, _ in acked)
    assert run("log", "verify", "--data", data).output.startswith(f"ok: {head} change-sets verified")
