"""``pocsync demo`` stops every node process however it is stopped: Ctrl-C (SIGINT), ``kill`` (SIGTERM)
or a closed terminal (SIGHUP).  The nodes run in their own sessions (so a Ctrl-C does not reach them
half-way through the demo's own shutdown); the demo alone must stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def node_pids(base: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run" in cmd and any(str(base).encode() in part for part in cmd):
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_demo_stops_every_node_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    base = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pocsync.cli.main", "demo", "--keep", "--dir", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # as from a terminal: a test run started in the background (a shell without job control) would
        # otherwise pass on an ignored SIGINT, which Python keeps ignoring (no KeyboardInterrupt at all)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out: list[str] = []
    threading.Thread(
        target=lambda: out.extend(iter(proc.stdout.readline, b"")) if proc.stdout else None, daemon=True
    ).start()
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pids = node_pids(base)
            if len(pids) == 4 and (base / "operator.token").exists():
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.2)
        else:
            raise AssertionError(f"the demo's four nodes did not start: {pids}")
        # to a pipe (a log file, `| tee`), the URLs and token paths are said while it runs, one line each
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(b"Dashboard:" in ln for ln in out):
            time.sleep(0.2)
        text = b"".join(out).decode()
        assert f"/dashboard   token in {base / 'operator.token'}\n" in text, text
        assert f"--token {base / 'operator.token'}\n" in text and f"token in {base / 'poc.token'}" in text, text
        proc.send_signal(sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
        left = [p for p in pids if alive(p)]
        assert not left, f"node processes left running after {sig.name}: {left}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(b"everything the demo made is in" in ln for ln in out):
            time.sleep(0.1)
        lines = b"".join(out).decode().splitlines()
        assert "stopping every node…" in lines and any(
            ln.startswith(("converged: all four", "NOT converged: {")) for ln in lines
        ), lines[-5:]
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert "Traceback" not in err, err
    finally:
        for p in node_pids(base):
            os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
