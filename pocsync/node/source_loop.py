"""``pocsync-sources``: the daemon keeps each ``[[sources]]`` directory in step (docs/adapters/).

Each source is re-read on its own interval, and an LDAP source also as soon as it changes where
the server offers RFC 4533 (syncrepl refreshAndPersist, e.g. OpenLDAP with syncprov); the minimal diff is published as one change-set, exactly as
``pocsync entry import`` does, through the same :mod:`pocsync.directory.sources` code.  Reading runs in a
thread (files and LDAP block); planning and committing run on the store worker.  One source's
failure never stops the others or the loop.  Status per source (last run, result, counts and
reasons — never contact data or record references) is kept for ``/v1/health`` and the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from pocsync.directory import adapters, sources
from pocsync.errors import PocsyncError
from pocsync.folder.config import SourceConfig

log = logging.getLogger("pocsync.sources")


def _status(sc: SourceConfig) -> dict[str, Any]:
    return {
        "adapter": sc.adapter,
        "interval_s": sc.interval_seconds,
        "sync_deletes": sc.sync_deletes,
        "runs": 0,
        "last_run": None,
        "last_ok": None,
        "result": "not run yet",
        "error": None,
        "records": 0,
        "valid": 0,
        "unchanged": 0,
        "skipped": 0,
        "invalid": 0,
        "puts": 0,
        "deletes": 0,
        "last_committed_seq": None,
        "invalid_reasons": {},
        "watch": "interval",
    }


async def run_source(rt: Any, sc: SourceConfig) -> dict[str, Any]:
    """Import one source once; returns (and records) its status."""
    st: dict[str, Any] = rt.sources.setdefault(sc.name, _status(sc))
    st["last_run"] = round(time.time(), 3)
    st["runs"] += 1
    cfg = rt.cfg
    try:
        adapter = adapters.load(sc.adapter)
        mapping = adapters.load_mapping(cfg.resolve(sc.mapping)) if sc.mapping else None
        m = adapter.default_mapping.merged(mapping)
        source = sc.source if getattr(adapter, "live", False) else str(cfg.resolve(sc.source))
        records = await asyncio.to_thread(sources.read_records, adapter, source, m, base_dir=cfg.base)

        def apply(store: Any) -> sources.Plan:
            p = sources.plan(
                records,
                m,
                source=f"source:{sc.name}",
                adapter=sc.adapter,
                own=sources.own_state(store),
                tracked_keys=sources.tracked(store, f"source:{sc.name}"),
                sync_deletes=sc.sync_deletes,
                in_scope=sources.scope_check(store),
                elsewhere=sources.claimed_elsewhere(store, f"source:{sc.name}"),
            )
            sources.check_plan(p, strict=sc.strict)
            key = rt.nd.key_for_next_edit(store) if p.ops else None
            sources.commit(store, key, p, author=f"source:{sc.name}")
            return p

        p = await rt.worker.run(apply)
    except PocsyncError as exc:
        failed = getattr(exc, "plan", None)
        if failed is not None:
            _counts(st, failed)
        st.update(result="error", error={"reason": exc.reason, "message": exc.message[:300]})
        log.warning("source %s: %s: %s", sc.name, exc.reason, exc.message[:300])
        rt.counters[f"source_errors:{sc.name}"] += 1
        return st
    _counts(st, p)
    st["last_ok"] = st["last_run"]
    st["error"] = None
    st["result"] = "invalid records skipped" if p.invalid else ("published" if p.committed else "unchanged")
    if p.committed:
        st["last_committed_seq"] = p.committed["seq"]
        rt.publish_now.set()
        log.info("source %s: published seq %s with %d op(s)", sc.name, p.committed["seq"], p.committed["ops"])
    return st


def _counts(st: dict[str, Any], p: sources.Plan) -> None:
    st.update(
        records=p.records,
        valid=len(p.present),
        unchanged=p.unchanged,
        skipped=len(p.skipped),
        invalid=len(p.invalid),
        puts=len(p.puts),
        deletes=len(p.deletes),
        invalid_reasons=dict(Counter(x.reason for x in p.invalid)),
    )


async def _watch(rt: Any, sc: SourceConfig, notify: Any) -> Any:
    """Start following an LDAP source's changes (syncrepl) if its server offers it; None otherwise."""
    adapter = adapters.load(sc.adapter)
    if not hasattr(adapter, "watch"):
        return None
    mapping = adapters.load_mapping(rt.cfg.resolve(sc.mapping)) if sc.mapping else None
    m = adapter.default_mapping.merged(mapping)
    return await asyncio.to_thread(adapter.watch, sc.source, mapping=m, base_dir=rt.cfg.base, on_change=notify)


async def source_loop(app: Any) -> None:
    from pocsync.live.runtime import RUNTIME

    rt = app[RUNTIME]
    configured = rt.cfg.sources
    for sc in configured:
        rt.sources.setdefault(sc.name, _status(sc))
    if not configured:
        return
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    changed: set[str] = set()
    watches: dict[str, Any] = {}

    def notifier(name: str) -> Any:
        def on_change() -> None:  # called from the LDAP listener thread
            def mark() -> None:
                changed.add(name)
                wake.set()

            loop.call_soon_threadsafe(mark)

        return on_change

    due = {sc.name: 0.0 for sc in configured}
    try:
        while True:
            now = time.monotonic()
            for sc in configured:
                if now < due[sc.name] and sc.name not in changed:
                    continue
                changed.discard(sc.name)
                due[sc.name] = now + sc.interval_seconds
                try:
                    st = await run_source(rt, sc)
                    w = watches.get(sc.name)
                    if st["result"] != "error" and (w is None or not w.alive()):
                        if w is not None:
                            w.stop()
                        watches[sc.name] = await _watch(rt, sc, notifier(sc.name))
                    st["watch"] = "on change (RFC 4533)" if watches.get(sc.name) else "interval"
                except asyncio.CancelledError:
                    raise
                except PocsyncError as exc:
                    log.warning("source %s: cannot follow changes: %s", sc.name, exc.reason)
                    rt.sources[sc.name]["watch"] = "interval"
                except Exception as exc:
                    log.exception("source %s crashed", sc.name)
                    rt.sources[sc.name].update(
                        result="error", error={"reason": "internal_error", "message": type(exc).__name__}
                    )
            wake.clear()
            if not changed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(0.5, min(due.values()) - time.monotonic()))
            await asyncio.sleep(0.5)  # one LDAP edit may arrive as several messages: take them together
    finally:
        for w in watches.values():
            if w is not None:
                w.stop()
