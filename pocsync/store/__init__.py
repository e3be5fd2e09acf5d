"""A node's durable store: SQLite (WAL, synchronous=FULL) behind the core's State interface."""

from pocsync.store.sqlite import Store, SQLiteState

__all__ = ["Store", "SQLiteState"]
