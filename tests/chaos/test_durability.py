"""A crash loses no acknowledged edit: SIGKILL a writer in a loop, then check the log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
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
        # kill after a chosen number of acknowledgements (an event, not a time): the writer is then in the
        # middle of its next edit, at a point that varies with the machine; every round has acked edits
        want = rng.randint(1, 40)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.edit_loop", str(data), f"round{r}"],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines: list[str] = []
        enough = threading.Event()

        def read(
            child: subprocess.Popen = child,
            lines: list[str] = lines,
            enough: threading.Event = enough,
            want: int = want,
        ) -> None:
            for ln in child.stdout:
                lines.append(ln.decode())
                if len(lines) >= want:
                    enough.set()
            enough.set()  # EOF: the writer died on its own (checked below)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert enough.wait(60), f"round {r}: the writer did not acknowledge {want} edits within 60 s"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"round {r}: the writer exited {child.returncode} on its own"
        round_acked = [(int(s), i) for _, s, i in (ln.split() for ln in lines if ln.startswith("ok "))]
        assert len(round_acked) >= want, f"round {r}: {len(round_acked)} acknowledged edits, expected {want}+"
        acked.extend(round_acked)
    with NodeDir.open(data).store() as store:
        for seq, cs_id in acked:
            row = store.conn.execute("SELECT id FROM log WHERE origin='eu' AND seq=?", (seq,)).fetchone()
            assert row is not None and row[0] == cs_id, f"acknowledged edit seq {seq} lost"
        head = store.heads()["eu"].seq
    assert head >= max(s for s, _ in acked)
    assert run("log", "verify", "--data", data).output.startswith(f"ok: {head} change-sets verified")
