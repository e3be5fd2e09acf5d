"""The daemon tells systemd it is ready and feeds the watchdog (sd_notify over a real unix socket)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.nodes import Federation, wait_for


def test_ready_and_watchdog_notifications(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un",))
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pocsync"), "run", "--data", str(fed["un"].data)],
        env={**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    got: list[bytes] = []

    def receive() -> bool:
        try:
            got.append(sock.recv(256))
        except TimeoutError:
            pass
        return got.count(b"WATCHDOG=1") >= 2

    try:
        wait_for(receive, 30, f"READY and two WATCHDOG notifications (got {got})")
        assert got[0] == b"READY=1"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        sock.close()
    assert proc.returncode == 0
