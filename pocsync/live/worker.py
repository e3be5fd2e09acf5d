"""One writer thread per process (docs/ARCHITECTURE.md): the daemon's only SQLite connection lives here.

Coroutines call ``await worker.run(fn, *args)``; ``fn(store, *args)`` runs on the worker thread,
one at a time, so the store never sees two writers from this process.  The CLI writes from other
processes; SQLite's ``BEGIN IMMEDIATE`` serialises them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pocsync.core.replica import Limits
from pocsync.store import Store

T = TypeVar("T")


class StoreWorker:
    def __init__(self, path: Path, *, limits: Limits) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocsync-store")
        self._store: Store | None = None
        self._path, self._limits = path, limits

    def _open(self) -> None:
        self._store = Store.open(self._path, limits=self._limits)
        # the daemon does not notify itself through its commit FIFO (ADR 41): what it signs wakes its
        # publisher in process (rt.publish_now); its other commits (receipts, audit, marks) need no round
        # at once, and the data_version safety net still sees them
        self._store.commit_fifo = None

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._open)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            assert self._store is not None, "store worker not started"
            return fn(self._store, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def close(self) -> None:
        def shut() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)
