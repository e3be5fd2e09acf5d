"""Stopping child processes in tests: politely (SIGTERM, then SIGKILL after a timeout) or at once."""

from __future__ import annotations

import signal
import subprocess


def terminate(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
