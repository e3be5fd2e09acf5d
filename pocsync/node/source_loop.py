"""``pocsync-sources``: the daemon keeps each ``[[sources]]`` directory in step (docs/adapters/).

Each source is re-read on its own interval (an LDAP source too: polled; RFC 4533 change
notification is not implemented yet); the minimal diff is published as one change-set, exactly as
``pocsync entry import`` does, through the same :mod:`pocsync.sources` code.  Reading runs in a
thread (files and LDAP block); planning and committing run on the store worker.  One source's
failure never stops the others or the loop.  Status per source (last run, result, counts and
reasons — never contact data or record references) is kept for ``/v1/health`` and the dashboard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from pocsync import adapters, sources
from pocsync.config import SourceConfig
from pocsync.errors import PocsyncError

log = logging.getLogger("pocsync.sources")


def _status(sc: SourceConfig) -> dict[str, Any]:
    return {"adapter": sc.adapter, "interval_s": sc.interval_seconds, "sync_deletes": sc.sync_deletes,
            "runs": 0, "last_run": None, "last_ok": None, "result": "not run yet", "error": None,
            "records": 0, "valid": 0, "unchanged": 0, "skipped": 0, "invalid": 0, "puts": 0, "deletes": 0,
            "last_committed_seq": None, "invalid_reasons": {}, "skipped_reasons": 0}


async def run_source(rt: Any, sc: SourceConfig) -> dict[str, Any]:
    """Import one source once; returns (and records) its status."""
    st = rt.sources.setdefault(sc.name, _status(sc))
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
            p = sources.plan(records, m, source=f"source:{sc.name}", adapter=sc.adapter,
                             own=sources.own_state(store), tracked_keys=sources.tracked(store, f"source:{sc.name}"),
                             sync_deletes=sc.sync_deletes, in_scope=sources.scope_check(store))
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
    st.update(records=p.records, valid=len(p.present), unchanged=p.unchanged, skipped=len(p.skipped),
              invalid=len(p.invalid), puts=len(p.puts), deletes=len(p.deletes),
              invalid_reasons=dict(Counter(x.reason for x in p.invalid)))


async def source_loop(app: Any) -> None:
    from pocsync.api.peer import RUNTIME

    rt = app[RUNTIME]
    configured = rt.cfg.sources
    for sc in configured:
        rt.sources.setdefault(sc.name, _status(sc))
    if not configured:
        return
    due = {sc.name: 0.0 for sc in configured}
    while True:
        now = time.monotonic()
        for sc in configured:
            if now >= due[sc.name]:
                due[sc.name] = now + sc.interval_seconds
                try:
                    await run_source(rt, sc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 — one source must not stop the others
                    log.exception("source %s crashed", sc.name)
                    rt.sources[sc.name].update(result="error", error={"reason": "internal_error",
                                                                      "message": type(exc).__name__})
        await asyncio.sleep(max(0.5, min(due.values()) - time.monotonic()))
