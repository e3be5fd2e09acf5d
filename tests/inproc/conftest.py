"""In-process async tests of the daemon's tasks and handlers (issue 12): nodes made with the real CLI
(keys, signed manifest, SQLite stores in tmp_path), run as aiohttp applications on this test's loop."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pocsync.live import runtime as runtime_mod
from tests.support.nodes import Federation


@pytest.fixture()
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pull waits until the broker has been quiet for a moment; a short moment in these tests."""
    monkeypatch.setattr(runtime_mod, "MQTT_QUIET_SECONDS", 0.05)


@pytest.fixture()
def pair(tmp_path: Path) -> Federation:
    """Two nodes (un, eu) without a broker: sync over HTTP pulls and pokes only."""
    return Federation(tmp_path / "fed", ("un", "eu"), pull_interval=30)


HANG_SECONDS = 45.0


@pytest_asyncio.fixture(autouse=True)
async def no_hang() -> AsyncIterator[None]:
    """A test still running after HANG_SECONDS fails clearly: every task's stack is printed, then all are
    cancelled (an await that never ends becomes a CancelledError at that await, not a stuck suite)."""
    loop = asyncio.get_running_loop()
    fired: list[str] = []

    def stuck() -> None:
        out = io.StringIO()
        for t in asyncio.all_tasks(loop):
            print(f"--- {t.get_name()}", file=out)
            t.print_stack(file=out)
        fired.append(out.getvalue())
        print(f"\n--- in-process test still running after {HANG_SECONDS:.0f} s; tasks:\n{fired[0]}", file=sys.stderr)
        for t in asyncio.all_tasks(loop):
            t.cancel()

    handle = loop.call_later(HANG_SECONDS, stuck)
    yield
    handle.cancel()
    assert not fired, f"the test hung for {HANG_SECONDS:.0f} s; its tasks then:\n{fired[0]}"
