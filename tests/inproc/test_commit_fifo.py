"""The commit FIFO in process (ADR 41): the daemon's real application, its publisher's safety nets
(data_version check, publish_poll_ms) pushed out of reach, so only the notification can wake it."""

from __future__ import annotations

import asyncio
import time

import pytest

from pocsync.node import daemon
from pocsync.store import Store
from pocsync.store.notify import fifo_path
from tests.support.aio import edit, runtime, serve, until
from tests.support.nodes import Federation, entry


@pytest.mark.asyncio
async def test_a_commit_by_another_store_wakes_the_publisher_through_the_fifo(
    pair: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    eu = pair["eu"]
    toml = eu.data / "sync.toml"
    toml.write_text(toml.read_text().replace("[sync]\n", "[sync]\npublish_poll_ms = 600000\n"))
    monkeypatch.setattr(daemon, "COMMIT_WATCH_S", 3600.0)  # no data_version check within the test
    fifo = fifo_path(eu.data / "store.sqlite")
    server = await serve(eu.data)
    try:
        rt = runtime(server)
        assert fifo.is_fifo() and fifo.stat().st_mode & 0o777 == 0o600
        assert rt.counters["commit_notifications"] == 0
        out = await asyncio.to_thread(edit, eu.data, entry("AUT/technical"))  # its own Store, as the CLI's
        t0 = time.monotonic()

        async def published() -> bool:
            return not await rt.worker.run(Store.unpublished, 10)

        await until(published, timeout=10, what="eu's publisher to publish the CLI's change-set")
        took = time.monotonic() - t0
        assert rt.counters["commit_notifications"] >= 1
        assert out.seq == (await rt.summary())["heads"]["eu"][0]
        assert took < 2.0, f"published {took:.3f} s after the commit"
    finally:
        await server.close()
    assert not fifo.exists(), "a clean shutdown removes the pipe"
