"""A node's durable store: SQLite (WAL, synchronous=FULL) behind the core's State interface."""

from pocsync.store.sqlite import SQLiteState
from pocsync.store.store import Store

__all__ = ["Store", "SQLiteState"]
