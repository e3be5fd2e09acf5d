"""The lazy command registry (pocsync/cli/registry.py): its short help cannot drift from the commands', and
``pocsync --help`` / ``pocsync <group> --help`` import no heavy module (issue 13: CLI start)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from pocsync.cli import registry
from pocsync.cli.group import LazyGroup, load
from pocsync.cli.main import cli

GROUPS = [cli, *registry.GROUPS]
ENTRIES = [(g.name, name) for g in GROUPS for name in sorted(g.lazy)]  # type: ignore[attr-defined]

#: what `--help` must not import (each costs tens to hundreds of ms)
HEAVY = (
    "rich",
    "aiohttp",
    "aiomqtt",
    "cryptography",
    "sqlite_utils",
    "jose",
    "pycountry",
    "pocsync.store",
    "pocsync.core",
    "pocsync.folder",
    "pocsync.directory",
    "pocsync.cli.common",
)


def _group(name: str | None) -> LazyGroup:
    return next(g for g in GROUPS if g.name == name)  # type: ignore[return-value]


@pytest.mark.parametrize(("group", "name"), ENTRIES)
def test_table_short_help_is_the_commands_own(group: str, name: str) -> None:
    g = _group(group)
    target, short = g.lazy[name]
    cmd = load(target)
    assert cmd.name == name, f"{target} is command {cmd.name!r}, listed as {name!r}"
    assert not cmd.hidden
    for limit in (30, 45, 60, 80, 82, 100, 10**6):  # what --help lists at any terminal width
        listed = click.Command(name, help=short).get_short_help_str(limit)
        own = cmd.get_short_help_str(10**6)
        assert listed == cmd.get_short_help_str(limit), f"registry.py lists `{group} {name}` not as {own!r}"


def test_every_command_is_reachable_and_listed_once() -> None:
    ctx = click.Context(cli)
    seen = set()
    for g in GROUPS:
        for name in g.list_commands(ctx):
            cmd = g.get_command(ctx, name)
            assert cmd is not None, (g.name, name)
            seen.add((g.name, name))
    assert len(seen) == sum(len(g.list_commands(ctx)) for g in GROUPS)


@pytest.mark.parametrize("args", [["--help"], *[[g.name, "--help"] for g in registry.GROUPS], ["log", "--help"]])
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    code = (
        "import sys, runpy; sys.argv = ['pocsync', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('pocsync.cli.main', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r}))\n"
        "print(' '.join(bad), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("Usage: pocsync"), proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", f"`pocsync {' '.join(args)}` imported: {proc.stderr.strip()}"
