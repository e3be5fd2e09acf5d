"""A node's durable store: SQLite (WAL, synchronous=FULL; receipts from peers NORMAL, ADR 42) behind the core's
State interface."""

from pocsync.store.sqlite import SQLiteState
from pocsync.store.store import Store

__all__ = ["Store", "SQLiteState"]
