"""The README, followed literally: its install-and-run command works in a fresh copy with a fresh virtual
environment, and every pocsync command and flag it shows exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def pocsync_lines() -> list[list[str]]:
    lines = []
    for block in shell_blocks():
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("pocsync "):
                lines.append(line.split()[1:])
    return lines


def test_readme_opens_with_the_two_commands() -> None:
    blocks = shell_blocks()
    assert blocks[0].strip() == "./scripts/demo" and blocks[1].strip() == "./scripts/test"
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec ./scripts/test")


@pytest.mark.parametrize("words", pocsync_lines(), ids=lambda w: " ".join(w[:3]))
def test_every_command_and_flag_in_the_readme_exists(words: list[str]) -> None:
    cmd = []
    for w in words:
        if w.startswith("-") or "/" in w or "." in w or w.isupper() or w[0].isdigit():
            break
        cmd.append(w)
    help_text = run(*cmd, "--help").output
    for flag in (w for w in words if w.startswith("--")):
        assert flag in help_text, f"`pocsync {' '.join(cmd)}` has no {flag}"


@pytest.mark.slow
def test_fresh_copy_installs_and_the_demo_converges(tmp_path: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    copy = tmp_path / "pocsync"
    for f in files:
        src = ROOT / f
        if src.is_file():
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / f)
    proc = subprocess.run(["./scripts/demo", "--duration", "15"], cwd=copy, capture_output=True, timeout=900)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    assert "converged" in out and "NOT converged" not in out
    assert (copy / ".venv" / "bin" / "pocsync").exists()
    assert "installing" in proc.stderr.decode(errors="replace")  # the install showed its progress
    again = subprocess.run(["scripts/lib/ensure-venv"], cwd=copy, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout + again.stderr == ""  # the next ./scripts/demo skips the install
