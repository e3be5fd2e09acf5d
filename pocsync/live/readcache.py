"""The read path of the daemon (issue 13): no read waits on the store thread or on a disk sync when
nothing changed.

* :class:`StoreWatch` — ``PRAGMA data_version`` on a second connection of the node's own store file.
  Its value changes whenever *any* connection commits (this daemon's store thread, a CLI process), so
  a few microseconds on the event loop tell whether anything a read depends on may have changed.
* :class:`ReadCache` — what every read needs, valid for one ``data_version``: the installed manifest,
  the view digest and the "listed by" networks (the list's content key), the token subjects' states
  (live entry, death, revocation) and the rendered bodies.  Any commit changes ``data_version``, so a
  revocation, a holder change, a delete or a new manifest is seen by the very next request (it is
  never served from a stale cache).  Rendered ``GET /v1/entries`` bodies are kept per content key
  (digest + listing), so a commit that changes neither (an audit flush, a head announcement) does not
  re-render them.
* :class:`AuditBuffer` — every read is audited, but the rows are group-committed by one writer at most
  every :data:`AUDIT_WINDOW_S` seconds (ADR 21): no read waits on an fsync; a crash loses at most the
  rows of the last window (docs/SECURITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from pocsync.core import manifest as mf
from pocsync.store import Store
from pocsync.store.sqlite import utcnow
from pocsync.tokens import Claims

log = logging.getLogger("pocsync.node")

AUDIT_WINDOW_S = 1.0  # the longest an audit row waits in memory before its commit (SECURITY.md)
AUDIT_FLUSH_EVERY_S = 0.5  # flush period; a flush itself takes well under the rest of the window
AUDIT_MAX_BUFFERED = 20_000  # beyond this many rows waiting, a flush starts at once
MAX_BODIES = 512  # rendered list bodies kept (per query, page, per_page)
MAX_SUBJECTS = 20_000  # token subjects' states kept


class StoreWatch:
    """``PRAGMA data_version`` of the store file, read on the event loop (no thread hop, no lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self._fallback = 0

    def version(self) -> int:
        try:
            if self.conn is None:
                self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=0.05, check_same_thread=False)
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            # unreadable for a moment (e.g. WAL recovery): treat as changed, so nothing stale is served
            self._fallback -= 1
            return self._fallback

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None


#: a listing's cache key: (filters, page, per_page, overdue entries)
BodyKey = tuple[tuple[tuple[str, str], ...], int, int, tuple[tuple[str, str], ...]]


class ReadCache:
    def __init__(self, run: Callable[..., Any], path: Path) -> None:
        self._run = run  # StoreWorker.run
        self.watch = StoreWatch(path)
        self.gen: int | None = None
        self.manifest: mf.Manifest | None = None
        self.content: tuple[str, str] | None = None  # (view digest, listing JSON)
        self.networks: dict[str, dict[str, list[str]]] = {}
        self.rows: list[dict[str, Any]] | None = None  # decoded view rows for self.content
        self.bodies: OrderedDict[BodyKey, tuple[str, bytes, int]] = OrderedDict()  # per content
        self.entry_bodies: dict[tuple[str, str], tuple[str, bytes] | None] = {}  # (key, overdue), per gen
        self.subjects: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}  # per gen
        self.verified: dict[tuple[str, str], Claims] = {}  # (token, kind) -> Claims, per gen
        self._lock = asyncio.Lock()
        self._fresh: dict[str, dict[str, Any]] = {}
        self._fresh_key: tuple[tuple[str, int], int] | None = None
        self._snap: Any = None
        self._snap_key: tuple[str, int] | None = None
        #: the overdue entries of ``_fresh`` (key, overdue JSON): part of a listing's cache key
        self.overdue: tuple[tuple[str, str], ...] = ()
        self._rows_lock = asyncio.Lock()
        self.refreshes = 0

    def remember_verified(self, k: tuple[str, str], claims: Claims) -> None:
        if len(self.verified) >= MAX_SUBJECTS:
            self.verified.clear()
        self.verified[k] = claims

    async def fresh(self) -> int:
        """Bring the cache to the store's current data_version; returns it."""
        v = self.watch.version()
        if v == self.gen:
            return v
        async with self._lock:
            v = self.watch.version()  # read before computing: a commit during the computation shows next time
            if v == self.gen:
                return v

            def compute(s: Store) -> tuple[mf.Manifest, str, dict[str, dict[str, list[str]]]]:
                return s.require_manifest(), s.digest(), s.listing()

            m, digest, nets = await self._run(compute)
            self.refreshes += 1
            self.manifest = m
            self.subjects.clear()
            self.verified.clear()
            self.entry_bodies.clear()
            import json

            content = (digest, json.dumps(nets, sort_keys=True))
            if content != self.content:
                self.content, self.networks, self.rows = content, nets, None
                self.bodies.clear()
            self.gen = v
            return v

    async def get_manifest(self) -> mf.Manifest:
        await self.fresh()
        assert self.manifest is not None
        return self.manifest

    async def subject_state(self, sub: str | None, jti: str | None, parent: str | None) -> dict[str, Any]:
        """What :meth:`Store.subject_state` says, cached for the current data_version."""
        gen = await self.fresh()
        k = (sub or "", jti, parent)
        hit = self.subjects.get(k)
        if hit is not None:
            return hit
        found: dict[str, Any]
        if sub and "/" in sub:
            found = await self._run(Store.subject_state, sub, jti, parent)
        else:
            found = {
                "entry": None,
                "dead_since": None,
                "revoked": await self._run(lambda s: any(bool(j) and s.is_revoked(j) for j in (jti, parent))),
            }
        if self.gen == gen:  # only what was read at (or after) the current version is kept for it
            if len(self.subjects) >= MAX_SUBJECTS:
                self.subjects.clear()
            self.subjects[k] = found
        return found

    async def view_rows(self) -> tuple[tuple[str, str], list[dict[str, Any]]]:
        await self.fresh()
        content = self.content
        rows = self.rows
        if rows is None:
            async with self._rows_lock:  # one decode for the many requests that arrive together
                if self.rows is not None and self.content == content:
                    rows = self.rows
                else:
                    rows = await self._run(Store.entries)
                    if self.content == content:
                        self.rows = rows
        assert content is not None
        return content, rows

    async def freshness(self, now_ms: int) -> dict[str, dict[str, Any]]:
        """:func:`pocsync.directory.freshness.by_key` of the whole view.  What does not move with the clock is
        read once per view digest and manifest (``freshness.snapshot``, on the store thread); the overdue
        judgement (against the node's clock, PROTOCOL.md §15.5) is redone once per second, on the loop."""
        from pocsync.directory import freshness

        gen = await self.fresh()
        assert self.content is not None and self.manifest is not None
        skey = (self.content[0], self.manifest.version)  # the digest covers the view and the check registers
        if self._snap_key != skey:
            snap: freshness.Snapshot = await self._run(freshness.snapshot)
            if self.gen == gen:
                self._snap, self._snap_key, self._fresh_key = snap, skey, None
        else:
            snap = self._snap
        k = (skey, now_ms // 1000)
        if self._fresh_key != k:
            found = freshness.at(snap, now_ms)
            if self._snap_key == skey:
                overdue = self.overdue_of(found)  # computed from found: not yet the kept answer
                self._fresh, self._fresh_key, self.overdue = found, k, overdue
            return found
        return self._fresh

    def overdue_of(self, fresh: dict[str, dict[str, Any]]) -> tuple[tuple[str, str], ...]:
        """The overdue entries of ``fresh`` (an answer of :meth:`freshness`) as (key, overdue JSON)."""
        if fresh is self._fresh:
            return self.overdue
        return tuple(sorted((k, json.dumps(f["overdue"], sort_keys=True)) for k, f in fresh.items() if f["overdue"]))

    def body(self, k: BodyKey) -> tuple[str, bytes, int] | None:
        hit = self.bodies.get(k)
        if hit is not None:
            self.bodies.move_to_end(k)
        return hit

    def keep_body(self, content: tuple[str, str], k: BodyKey, value: tuple[str, bytes, int]) -> None:
        if self.content != content:
            return
        self.bodies[k] = value
        while len(self.bodies) > MAX_BODIES:
            self.bodies.popitem(last=False)

    def close(self) -> None:
        self.watch.close()


class AuditBuffer:
    """Audit rows waiting for their group commit (at most AUDIT_WINDOW_S)."""

    def __init__(self, run: Callable[..., Any]) -> None:
        self._run = run
        self.rows: list[tuple[str, str, str, str, str, str]] = []
        self.flushed = 0
        self.failures = 0
        self._wake = asyncio.Event()

    def add(self, *, actor: str, action: str, target: str, result: str, detail: str = "") -> None:
        self.rows.append((utcnow(), actor, action, target, result, detail))
        if len(self.rows) >= AUDIT_MAX_BUFFERED:
            self._wake.set()

    async def flush(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        try:
            await self._run(Store.audit_many, rows)
            self.flushed += len(rows)
        except Exception as exc:
            self.failures += 1
            self.rows = (rows + self.rows)[-4 * AUDIT_MAX_BUFFERED :]
            log.warning(
                "audit flush failed (%d rows kept for the next try): %s",
                len(rows),
                exc,
                extra={"fields": {"event": "audit_flush_failed", "error": str(exc)}},
            )

    async def loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=AUDIT_FLUSH_EVERY_S)
            self._wake.clear()
            await self.flush()


READ_CACHE = web.AppKey("read_cache", ReadCache)
AUDIT = web.AppKey("audit_buffer", AuditBuffer)


def install(app: web.Application, run: Callable[..., Any], path: Path) -> None:
    """Create the read cache and the audit buffer; their lifetime is ``read_path_ctx`` (after the store's)."""
    app[READ_CACHE] = ReadCache(run, path)
    app[AUDIT] = AuditBuffer(run)


async def read_path_ctx(app: web.Application) -> AsyncIterator[None]:
    """The audit flusher runs while the store is open; on shutdown the last rows are committed."""
    buf = app[AUDIT]
    task = asyncio.create_task(buf.loop(), name="pocsync-audit")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    await buf.flush()
    app[READ_CACHE].close()
