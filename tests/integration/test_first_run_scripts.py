"""First contact (issue 9): ./scripts/demo installs once with progress and skips the install later;
./scripts/test waits, bounded and saying so, while another process holds the apt lock.

The demo script runs for real on a copy of scripts/ in a throw-away project (a real venv, a real pip install of a
one-module package that stands in for pocsync), so that the repository's own .venv is never touched. The apt
helper runs the real apt-get against a lock directory of its own, never the machine's.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow

FAKE_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "fake-pocsync"
version = "0.0.1"

[project.scripts]
pocsync = "fakepocsync:main"
"""
FAKE_MODULE = """\
import sys


def main():
    print("fake pocsync ran:", " ".join(sys.argv[1:]))
"""


def _demo(project: Path) -> tuple[str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(project / "scripts" / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "fake pocsync ran: demo --keep"  # the demo ran, after the install
    return proc.stdout + proc.stderr, took


def test_demo_installs_once_with_progress_then_skips_the_install(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "scripts" / "lib").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "demo", project / "scripts" / "demo")
    shutil.copy2(ROOT / "scripts" / "lib" / "ensure-venv", project / "scripts" / "lib" / "ensure-venv")
    (project / "pyproject.toml").write_text(FAKE_PYPROJECT)
    (project / "fakepocsync.py").write_text(FAKE_MODULE)

    first, t_first = _demo(project)
    assert "Setting up .venv" in first
    steps = [line for line in first.splitlines() if re.match(r"^  \[ *[0-9]+s\] ", line)]
    assert any("building pocsync" in line for line in steps) and any("installing 1 package" in line for line in steps)
    assert "pocsync is installed in .venv" in first

    second, t_second = _demo(project)
    assert second.strip() == "fake pocsync ran: demo --keep"  # nothing installed, nothing said
    print(f"first run {t_first:.1f} s, second run {t_second:.1f} s")

    (project / "pyproject.toml").write_text(FAKE_PYPROJECT + "\n[tool.fake]\nchanged = true\n")
    third, _ = _demo(project)
    assert "Setting up .venv" in third and "fake pocsync ran: demo --keep" in third
    assert "creating the virtual environment" not in third  # the venv is reused; only pip runs again


def _can_run_apt() -> bool:
    if shutil.which("apt-get") is None:
        return False
    return os.geteuid() == 0 or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_run_apt(), reason="needs apt-get and root (or password-less sudo)")
def test_apt_helper_waits_while_the_lock_is_held_then_goes_on(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Packages").write_text("")
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (tmp_path / "parts").mkdir()
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    opts = [
        "-o",
        f"Dir::State::Lists={lists}",
        "-o",
        f"Dir::Etc::sourcelist={tmp_path / 'sources.list'}",
        "-o",
        f"Dir::Etc::sourceparts={tmp_path / 'parts'}",
        "-o",
        f"Dir::Cache={tmp_path / 'cache'}",
        "-o",
        "APT::Sandbox::User=root",
    ]
    helper = str(ROOT / "scripts" / "lib" / "apt-get-wait")

    def held(seconds: float) -> threading.Thread:
        fd = os.open(lists / "lock", os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.lockf(fd, fcntl.LOCK_EX)  # the kind of lock apt takes (fcntl), as another apt-get would hold it

        def release() -> None:
            time.sleep(seconds)
            os.close(fd)

        t = threading.Thread(target=release)
        t.start()
        return t

    # while another process holds the lock, plain apt-get fails at once ...
    t = held(3)
    plain = subprocess.run(
        ["apt-get", *opts, "-qq", "update"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
    )
    assert plain.returncode != 0 and "Could not get lock" in plain.stderr
    t.join()

    # ... the helper says it waits, and goes on when the lock is released
    t = held(4)
    proc = subprocess.run([helper, *opts, "-qq", "update"], capture_output=True, text=True, timeout=120)
    t.join()
    assert proc.returncode == 0, proc.stderr
    assert "waiting for another package manager to finish" in proc.stderr
    assert "the lock was released" in proc.stderr

    # the wait is bounded: it gives up with a clear message and apt's own
    t = held(10)
    proc = subprocess.run(
        [helper, *opts, "-qq", "update"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "APT_LOCK_WAIT": "2"},
    )
    t.join()
    assert proc.returncode != 0
    assert "gave up after 2 s" in proc.stderr and "Could not get lock" in proc.stderr


def test_scripts_use_the_helpers() -> None:
    test_script = (ROOT / "scripts" / "test").read_text()
    assert "scripts/lib/apt-get-wait update" in test_script and "scripts/lib/apt-get-wait install" in test_script
    assert "apt-get update" not in test_script.replace("scripts/lib/apt-get-wait update", "")
    assert "scripts/lib/ensure-venv test" in test_script
    assert "scripts/lib/ensure-venv" in (ROOT / "scripts" / "demo").read_text()
