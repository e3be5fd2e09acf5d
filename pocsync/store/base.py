"""The store file of one node: lifecycle, transactions, meta and the installed manifest."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from pocsync.core import manifest as mf
from pocsync.core.outcome import Limits, Outcome
from pocsync.core.replica import Replica
from pocsync.errors import NoManifest, NotInitialised, StoreError
from pocsync.store import schema, search
from pocsync.store.notify import commit_notify, fifo_path
from pocsync.store.rows import disk_full, now_ms, utcnow
from pocsync.store.schema import SCHEMA_VERSION
from pocsync.store.sqlite import SQLiteState

S = TypeVar("S", bound="StoreBase")


class StoreBase:
    """A node's store file.  Open with :meth:`open` or :meth:`create`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, limits: Limits = Limits()) -> None:
        self.path = path
        self.conn = conn
        self.limits = limits
        self._manifest: mf.Manifest | None = None
        #: the daemon's commit FIFO, told of every COMMIT that wrote rows (ADR 41); None: nobody (the daemon's own)
        self.commit_fifo: Path | None = fifo_path(path)
        self._sync_owed = False  # a receipt's transaction that must reach the disk all the same (ADR 42)
        self._full_owed = False  # synchronous=FULL still to be restored (a receipt ended in a failed ROLLBACK)

    # --- lifecycle --------------------------------------------------------------
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.OperationalError as exc:
            conn.close()
            full = disk_full(exc, path)
            if full is None:
                raise
            raise full from None
        return conn

    @classmethod
    def create(cls: type[S], path: Path, *, node_id: str, limits: Limits = Limits()) -> S:
        if path.exists():
            raise StoreError(f"a store already exists at {path}; refusing to overwrite it", reason="store_exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, cls._connect(path), limits=limits)
        store.migrate()
        with store.transaction():
            store.set_meta("node_id", node_id)
            store.set_meta("created_at", utcnow())
        path.chmod(0o600)
        return store

    @classmethod
    def open(cls: type[S], path: Path, *, limits: Limits = Limits()) -> S:
        if not path.exists():
            raise NotInitialised(f"no store at {path}: run `pocsync init` first (or `pocsync recover`)")
        store = cls(path, cls._connect(path), limits=limits)
        store.migrate()
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        with self.transaction():
            has_meta = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            current = int(self.get_meta("schema_version") or 0) if has_meta else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"store schema v{current} is newer than this pocsync (v{SCHEMA_VERSION}); upgrade",
                    reason="schema_too_new",
                )
            for n in range(current, SCHEMA_VERSION):
                schema.apply(self.conn, n)
                self.set_meta("schema_version", str(n + 1))

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; nested use joins the outer one, and its durability.

        A durable transaction commits with ``synchronous=FULL``: on disk when it returns.  ``durable=False``
        is for receipts of peers' change-sets only (ADR 42): ``synchronous=NORMAL``, the commit is in the OS
        when it returns (a process crash loses nothing) and on disk at the next durable commit or checkpoint;
        :meth:`sync_on_commit` makes one durable all the same."""
        if self.conn.in_transaction:
            yield self.conn
            return
        if self._full_owed:  # a receipt's transaction ended inside a failed ROLLBACK: FULL again first
            self.conn.execute("PRAGMA synchronous=FULL")
            self._full_owed = False
        self._sync_owed = False
        if not durable:
            self.conn.execute("PRAGMA synchronous=NORMAL")  # outside a transaction: SQLite refuses it inside
        try:
            changes = self.conn.total_changes
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                search.keep_up(self.conn)  # the search index follows the view in the same transaction
                self.conn.execute("COMMIT")
                if self.conn.total_changes != changes:  # wrote something: wake the daemon's publisher (ADR 41)
                    commit_notify(self.commit_fifo)  # microseconds; never raises nor blocks
            except BaseException:
                # whatever failed (the body, the re-index, the COMMIT: disk full, I/O error, interrupt), the
                # transaction ends here: a connection left inside it would make every later transaction() join
                # a transaction that is never committed
                if self.conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            full = disk_full(exc, self.path)
            if full is None:
                raise
            raise full from None
        finally:
            if not durable:
                self._end_receipt()

    def sync_on_commit(self) -> None:
        """The open transaction reaches the disk before it returns, even a receipt's (ADR 42)."""
        self._sync_owed = True

    def _end_receipt(self) -> None:
        """After a non-durable transaction (committed or not): FULL again, and the WAL synced if owed."""
        if self.conn.in_transaction:  # a ROLLBACK that failed: SQLite refuses the PRAGMA here; the error raised stands
            self._full_owed = True
            return
        self.conn.execute("PRAGMA synchronous=FULL")
        owed, self._sync_owed = self._sync_owed, False
        if owed:  # what a FULL commit would have done: the WAL file (this and earlier commits) to the disk
            main = self.conn.execute("PRAGMA database_list").fetchone()["file"]  # the path SQLite resolved
            try:
                fd = os.open(f"{main}-wal", os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StoreError(f"cannot sync {main}-wal to disk: {exc}", reason="sync_failed") from exc

    # --- meta -------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r["value"] if r else None

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)", (key, value))

    @property
    def node_id(self) -> str:
        v = self.get_meta("node_id")
        if v is None:
            raise NotInitialised(f"store {self.path} has no node id")
        return v

    # --- manifest ---------------------------------------------------------------
    def manifest(self) -> mf.Manifest | None:
        """The installed manifest (parsed once per version; another process may install a newer one)."""
        r = self.conn.execute("SELECT max(version) AS v FROM manifests").fetchone()
        if r is None or r["v"] is None:
            return None
        if self._manifest is None or self._manifest.version != r["v"]:
            env = self.conn.execute("SELECT envelope FROM manifests WHERE version=?", (r["v"],)).fetchone()
            self._manifest = mf.parse(bytes(env["envelope"]))
        return self._manifest

    def require_manifest(self) -> mf.Manifest:
        m = self.manifest()
        if m is None:
            raise NoManifest("no manifest installed: run `pocsync manifest install --data DIR FILE`")
        return m

    def manifest_bytes(self, version: int) -> bytes | None:
        r = self.conn.execute("SELECT envelope FROM manifests WHERE version=?", (version,)).fetchone()
        return bytes(r["envelope"]) if r else None

    def manifest_versions(self) -> list[int]:
        return [r["version"] for r in self.conn.execute("SELECT version FROM manifests ORDER BY version")]

    def install_manifest(self, m: mf.Manifest, *, now_ms_: int | None = None) -> list[Outcome]:
        """Install ``m`` by the rotation rules and re-derive the view from the log."""
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction():
            mf.check_install(self.manifest(), m, now_s=t // 1000)
            self.conn.execute(
                "INSERT INTO manifests (version, id, envelope, installed_at) VALUES (?,?,?,?)",
                (m.version, m.id, m.to_bytes(), utcnow()),
            )
            st = SQLiteState(self.conn, source="reevaluate", limits=self.limits)
            return Replica(st, m, limits=self.limits).reevaluate(now_ms=t)

    # --- the log ------------------------------------------------------------------
    def replica(self, *, source: str = "") -> Replica:
        return Replica(
            SQLiteState(self.conn, source=source, limits=self.limits), self.require_manifest(), limits=self.limits
        )
