"""Small helpers of the store: UTC timestamps, disk-full errors and decoding a stored assertion."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pocsync import clock
from pocsync.core.merge import Assertion
from pocsync.errors import StoreError


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_ago(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_ms() -> int:
    return clock.now_ms()


def disk_full(exc: sqlite3.OperationalError, path: Path) -> StoreError | None:
    """A clear error when SQLite failed because the disk holding the store is full, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code != sqlite3.SQLITE_FULL:
        try:
            nearly_full = shutil.disk_usage(path.parent).free < (1 << 20)
        except OSError:
            nearly_full = False
        if not (nearly_full and (code or 0) & 0xFF == sqlite3.SQLITE_IOERR):
            return None
    return StoreError(f"the disk holding {path} is full: nothing was written; free space and retry", reason="disk_full")


def assertion_of(row: sqlite3.Row | dict[str, Any], key: str | None = None) -> Assertion:
    entry = row["entry"] if "entry" in row.keys() else None
    return Assertion(
        key=key or row["key"],
        origin=row["origin"],
        op=row["op"] if "op" in row.keys() else "put",
        hlc=row["hlc"],
        cs_id=row["cs_id"],
        index=row["idx"],
        seq=row["seq"],
        author=row["author"],
        entry=json.loads(entry) if entry else None,
    )
