"""SQLite store of one node (DESIGN §5 Durability).

* WAL journal, ``synchronous=FULL``: a transaction that returned is on disk.
* Every write happens in one ``BEGIN IMMEDIATE`` transaction, so the CLI and the
  daemon can both write: seq and hlc of a local edit are allocated, the
  change-set is signed, appended and the view updated in the same transaction.
* :class:`SQLiteState` implements the core's ``State`` interface, so the rules that
  run here are exactly those of :class:`pocsync.core.replica.Replica`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync import clock
from pocsync.core import held
from pocsync.core import changeset as csmod
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.changeset import ChangeSet
from pocsync.core.merge import Assertion, view_digest
from pocsync.core.replica import (
    MANIFEST_DEPENDENT,
    MAX_PARKED_BYTES_PER_ORIGIN,
    MAX_PARKED_PER_ORIGIN,
    MAX_EVIDENCE_PER_ORIGIN,
    QUARANTINE_HEAD_BYTES,
    UNVERIFIED_PARK_REASONS,
    Head,
    Limits,
    Outcome,
    Proof,
    Refusal,
    Replica,
)
from pocsync.errors import NoManifest, NotInitialised, PocsyncError, SigningRefused, StoreError
from pocsync.store import schema
from pocsync.store.schema import SCHEMA_VERSION

# The quarantine is a bounded record of what this node refused (issue 11, ADR 14): one row per distinct
# item (sha256 of its bytes) with a count, its reason, true size and first bytes.  The whole item is kept
# only when a manifest change could make it valid (MANIFEST_DEPENDENT) and it fits the envelope cap and
# its source's byte budget; rows are capped per source and expire.
QUARANTINE_MAX_ROWS_PER_SOURCE = 500
QUARANTINE_FULL_BYTES_PER_SOURCE = 8 * 1024 * 1024
QUARANTINE_TTL = timedelta(days=30)
UNVERIFIED_PARK_TTL = timedelta(days=7)
ANNOUNCED_OWN_TTL = timedelta(minutes=10)  # how long a peer's unproven claim about our chain blocks signing


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_ago(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_ms() -> int:
    return clock.now_ms()


def _disk_full(exc: sqlite3.OperationalError, path: Path) -> StoreError | None:
    """A clear error when SQLite failed because the disk holding the store is full, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code != sqlite3.SQLITE_FULL:
        try:
            nearly_full = shutil.disk_usage(path.parent).free < (1 << 20)
        except OSError:
            nearly_full = False
        if not (nearly_full and (code or 0) & 0xFF == sqlite3.SQLITE_IOERR):
            return None
    return StoreError(f"the disk holding {path} is full: nothing was written; free space and retry",
                      reason="disk_full")


def _assertion(row: sqlite3.Row | dict, key: str | None = None) -> Assertion:
    entry = row["entry"] if "entry" in row.keys() else None
    return Assertion(
        key=key or row["key"], origin=row["origin"], op=row["op"] if "op" in row.keys() else "put",
        hlc=row["hlc"], cs_id=row["cs_id"], index=row["idx"], seq=row["seq"], author=row["author"],
        entry=json.loads(entry) if entry else None,
    )


class SQLiteState:
    """The core's State interface on one SQLite connection (inside a transaction)."""

    def __init__(self, conn: sqlite3.Connection, *, source: str = "", max_envelope_bytes: int = 256 * 1024,
                 limits: Limits | None = None) -> None:
        self.c = conn
        self.limits = limits or Limits(max_envelope_bytes=max_envelope_bytes)
        self.max_envelope_bytes = self.limits.max_envelope_bytes
        self.source = source  # recorded with each appended change-set (local, import, mqtt, pull, …)
        self._kept: dict[str, tuple[str, str, int]] = {}  # id -> (received_at, source, published) across reset()
        # issue 13: each entry is serialised once (set_latest, then set_winner of the same object reuse it), and
        # the assertions this state wrote are not read back and decoded again (latest_for_key)
        self._texts: dict[int, tuple[Any, str]] = {}
        self._written: dict[tuple[str, str], Assertion] = {}

    def _text(self, entry: Any) -> str:
        """The stored JSON of an entry (sorted keys, compact, UTF-8): what jsonc.dumps gives for an entry
        that came out of a strictly parsed payload, without re-checking it (it was checked on the way in)."""
        hit = self._texts.get(id(entry))
        if hit is not None and hit[0] is entry:
            return hit[1]
        text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(self._texts) > 4096:
            self._texts.clear()
        self._texts[id(entry)] = (entry, text)
        return text

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.c.execute(sql, args).fetchone()

    # log
    def logged(self, origin: str, seq: int) -> Head | None:
        r = self._one("SELECT seq, id, hlc FROM log WHERE origin=? AND seq=?", origin, seq)
        return Head(r["seq"], r["id"], r["hlc"]) if r else None

    def log_envelope(self, origin: str, seq: int) -> bytes | None:
        r = self._one("SELECT envelope FROM log WHERE origin=? AND seq=?", origin, seq)
        return bytes(r["envelope"]) if r else None

    def append(self, cs: ChangeSet) -> None:
        received_at, source, published = self._kept.pop(cs.id, (utcnow(), self.source, 0))
        self.c.execute(
            "INSERT INTO log (origin, seq, id, hlc, prev, manifest, author, keyid, envelope, received_at, source,"
            " published) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (cs.origin, cs.seq, cs.id, cs.hlc, cs.prev, cs.manifest, cs.author, cs.keyid, cs.envelope, received_at,
             source, published),
        )

    def heads(self) -> dict[str, Head]:
        rows = self.c.execute(
            "SELECT l.origin, l.seq, l.id, l.hlc FROM log l JOIN (SELECT origin, max(seq) AS m FROM log"
            " GROUP BY origin) h ON l.origin=h.origin AND l.seq=h.m"
        )
        return {r["origin"]: Head(r["seq"], r["id"], r["hlc"]) for r in rows}

    def max_hlc(self) -> str | None:
        r = self._one("SELECT max(hlc) AS m FROM log")
        return r["m"] if r else None

    def all_log(self) -> list[bytes]:
        return [bytes(r["envelope"]) for r in self.c.execute("SELECT envelope FROM log ORDER BY origin, seq")]

    # parked / quarantine
    def park(self, cs_id: str, origin: str | None, seq: int | None, data: bytes, reason: str, message: str) -> None:
        self.c.execute(
            "INSERT INTO parked (id, origin, seq, reason, message, envelope, parked_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET reason=excluded.reason, message=excluded.message",
            (cs_id, origin, seq, reason, message, data, utcnow()),
        )
        if reason in UNVERIFIED_PARK_REASONS:
            self._bound_unverified(origin)
        else:
            self._bound_verified(origin)

    def _bound_verified(self, origin: str | None) -> None:
        """Verified parked items of one origin: at most MAX_PARKED_PER_ORIGIN and _BYTES_, nearest seqs kept."""
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        rows = self.c.execute(f"SELECT id, length(envelope) AS size FROM parked WHERE origin IS ? AND reason NOT IN"
                              f" ({','.join('?' * len(reasons))}) ORDER BY seq, id", (origin, *reasons)).fetchall()
        n = size = 0
        for r in rows:
            n += 1
            size += r["size"]
            if n > MAX_PARKED_PER_ORIGIN or size > MAX_PARKED_BYTES_PER_ORIGIN:
                self.c.execute("DELETE FROM parked WHERE id=?", (r["id"],))

    def _bound_unverified(self, origin: str | None) -> None:
        """Unverified parked items: expire after UNVERIFIED_PARK_TTL, oldest evicted beyond the caps."""
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        marks = ",".join("?" * len(reasons))
        self.c.execute(f"DELETE FROM parked WHERE reason IN ({marks}) AND parked_at < ?",
                       (*reasons, utc_ago(UNVERIFIED_PARK_TTL)))
        lim = self.limits  # sync.toml [limits] max_parked_per_origin, max_parked, max_parked_bytes
        checks = [(f"reason IN ({marks}) AND origin IS ?", (*reasons, origin), lim.max_parked_per_origin,
                   lim.max_parked_bytes // 4),
                  (f"reason IN ({marks})", reasons, lim.max_parked, lim.max_parked_bytes)]
        for where, args, max_n, max_bytes in checks:
            rows = self.c.execute(f"SELECT id, length(envelope) AS size FROM parked WHERE {where}"
                                  " ORDER BY parked_at DESC, rowid DESC", args).fetchall()
            n = size = 0
            for r in rows:
                n += 1
                size += r["size"]
                if n > max_n or size > max_bytes:
                    self.c.execute("DELETE FROM parked WHERE id=?", (r["id"],))

    def parked_for(self, origin: str, seq: int) -> list[bytes]:
        return [bytes(r["envelope"]) for r in
                self.c.execute("SELECT envelope FROM parked WHERE origin=? AND seq=? ORDER BY id", (origin, seq))]

    def all_parked(self, reason: str | None = None) -> list[bytes]:
        if reason is None:
            rows = self.c.execute("SELECT envelope FROM parked ORDER BY origin, seq, id")
        else:
            rows = self.c.execute("SELECT envelope FROM parked WHERE reason=? ORDER BY origin, seq, id", (reason,))
        return [bytes(r["envelope"]) for r in rows]

    def unpark(self, cs_id: str) -> None:
        self.c.execute("DELETE FROM parked WHERE id=?", (cs_id,))

    # --- chain evidence: verified change-sets refused by the chain checks (§8 step 6, ADR 37) --------------
    def keep_evidence(self, cs_id: str, origin: str, seq: int, data: bytes) -> None:
        self.c.execute("INSERT OR IGNORE INTO chain_evidence (id, origin, seq, envelope, kept_at) VALUES (?,?,?,?,?)",
                       (cs_id, origin, seq, data, utcnow()))
        self.c.execute("DELETE FROM chain_evidence WHERE origin=? AND id NOT IN (SELECT id FROM chain_evidence"
                       " WHERE origin=? ORDER BY seq, id LIMIT ?)", (origin, origin, MAX_EVIDENCE_PER_ORIGIN))

    def verified_at(self, origin: str, seq: int) -> list[bytes]:
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        rows = self.c.execute(
            f"SELECT id, envelope FROM parked WHERE origin=? AND seq=? AND reason NOT IN"
            f" ({','.join('?' * len(reasons))}) UNION SELECT id, envelope FROM chain_evidence WHERE origin=? AND seq=?"
            " ORDER BY id", (origin, seq, *reasons, origin, seq))
        return [bytes(r["envelope"]) for r in rows]
    # --- end chain evidence ------------------------------------------------------------------------------

    def quarantine(self, data: bytes, reason: str, message: str, source: str) -> None:
        """Record a refusal: bounded (see QUARANTINE_*), de-duplicated by the item's hash."""
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        now = utcnow()
        cur = self.c.execute("UPDATE quarantine SET count=count+1, last_at=?, message=? WHERE id=? AND reason=?",
                             (now, message[:1000], digest, reason))
        if cur.rowcount:
            return
        self.c.execute("DELETE FROM quarantine WHERE coalesce(last_at, received_at) < ?", (utc_ago(QUARANTINE_TTL),))
        keep = data[:QUARANTINE_HEAD_BYTES]
        if reason in MANIFEST_DEPENDENT and len(data) <= self.max_envelope_bytes:
            held = self.c.execute("SELECT coalesce(sum(length(envelope)), 0) FROM quarantine WHERE source=?",
                                  (source,)).fetchone()[0]
            if held + len(data) <= QUARANTINE_FULL_BYTES_PER_SOURCE:
                keep = data  # a manifest change may make it valid: keep it whole to retry
        self.c.execute(
            "INSERT INTO quarantine (id, reason, message, source, size, envelope, received_at, count, last_at)"
            " VALUES (?,?,?,?,?,?,?,1,?)",
            (digest, reason, message[:1000], source, len(data), keep, now, now),
        )
        self.c.execute(
            "DELETE FROM quarantine WHERE source=? AND n NOT IN"
            " (SELECT n FROM quarantine WHERE source=? ORDER BY n DESC LIMIT ?)",
            (source, source, QUARANTINE_MAX_ROWS_PER_SOURCE),
        )

    def take_quarantined(self, reasons: frozenset[str]) -> list[bytes]:
        """Whole quarantined items with these reasons (to retry); rows holding only a prefix stay."""
        marks = ",".join("?" * len(reasons))
        where = f"reason IN ({marks}) AND size = length(envelope)"
        rows = self.c.execute(f"SELECT n, envelope FROM quarantine WHERE {where} ORDER BY n",
                              tuple(sorted(reasons))).fetchall()
        self.c.execute(f"DELETE FROM quarantine WHERE {where}", tuple(sorted(reasons)))
        return [bytes(r["envelope"]) for r in rows]

    # proofs
    def proofs(self) -> list[Proof]:
        return [Proof(r["origin"], r["seq"], bytes(r["a"]), bytes(r["b"]))
                for r in self.c.execute("SELECT * FROM proofs ORDER BY origin, seq, id_a, id_b")]

    def add_proof(self, proof: Proof) -> bool:
        ids = sorted([(csmod.peek_identity(proof.a, max_bytes=1 << 30)[0], proof.a),
                      (csmod.peek_identity(proof.b, max_bytes=1 << 30)[0], proof.b)])
        cur = self.c.execute(
            "INSERT OR IGNORE INTO proofs (origin, seq, id_a, id_b, a, b, received_at) VALUES (?,?,?,?,?,?,?)",
            (proof.origin, proof.seq, ids[0][0], ids[1][0], ids[0][1], ids[1][1], utcnow()),
        )
        return cur.rowcount > 0

    # derived
    def latest(self, origin: str, key: str) -> Assertion | None:
        r = self._one("SELECT * FROM assertions WHERE origin=? AND key=?", origin, key)
        return _assertion(r) if r else None

    def latest_rank(self, origin: str, key: str) -> tuple[int, int] | None:
        """(seq, index) of ``latest(origin, key)`` without decoding its entry."""
        r = self._one("SELECT seq, idx FROM assertions WHERE origin=? AND key=?", origin, key)
        return (r[0], r[1]) if r else None

    def latest_for_key(self, key: str) -> list[Assertion]:
        out = []
        for r in self.c.execute("SELECT origin, key, op, hlc, cs_id, idx, seq, author, entry FROM assertions"
                                " WHERE key=?", (key,)):
            mine = self._written.get((r[0], key))
            if mine is not None and mine.cs_id == r[4] and mine.index == r[5]:
                out.append(mine)  # written by this state: not decoded again
                continue
            a = _assertion(r)
            if a.entry is not None:
                self._texts[id(a.entry)] = (a.entry, r["entry"])  # its stored text, if it wins
            out.append(a)
        return out

    def set_latest(self, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO assertions (origin, key, op, hlc, cs_id, idx, seq, author, entry)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (a.origin, a.key, a.op, a.hlc, a.cs_id, a.index, a.seq, a.author,
             self._text(a.entry) if a.entry is not None else None),
        )
        if len(self._written) > 4096:
            self._written.clear()
        self._written[(a.origin, a.key)] = a

    def note_death(self, key: str, hlc: str) -> None:
        """Tokens issued before an applied delete or withdrawal die (issue 11, case 5)."""
        self.c.execute("INSERT INTO key_deaths (key, hlc) VALUES (?,?)"
                       " ON CONFLICT(key) DO UPDATE SET hlc=max(hlc, excluded.hlc)", (key, hlc))

    def withdrawal(self, key: str) -> Assertion | None:
        r = self._one("SELECT *, 'withdraw' AS op, NULL AS entry FROM withdrawals WHERE key=?", key)
        return _assertion(r) if r else None

    def set_withdrawal(self, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO withdrawals (key, origin, hlc, cs_id, idx, seq, author) VALUES (?,?,?,?,?,?,?)",
            (a.key, a.origin, a.hlc, a.cs_id, a.index, a.seq, a.author),
        )

    def winner(self, key: str) -> Assertion | None:
        r = self._one("SELECT *, 'put' AS op FROM view WHERE key=?", key)
        return _assertion(r) if r else None

    def set_winner(self, key: str, a: Assertion | None) -> None:
        if a is None:
            self.c.execute("DELETE FROM view WHERE key=?", (key,))
            return
        self.c.execute(
            "INSERT OR REPLACE INTO view (key, origin, hlc, cs_id, idx, seq, author, entry) VALUES (?,?,?,?,?,?,?,?)",
            (key, a.origin, a.hlc, a.cs_id, a.index, a.seq, a.author, self._text(a.entry)),
        )

    def refuse(self, r: Refusal) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO refused (cs_id, idx, origin, seq, key, op, reason, message)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (r.cs_id, r.index, r.origin, r.seq, r.key, r.op, r.reason, r.message),
        )

    def record(self, namespace: str, key: str) -> Assertion | None:
        r = self._one("SELECT * FROM records WHERE ns=? AND key=?", namespace, key)
        return _assertion(r) if r else None

    def set_record(self, namespace: str, key: str, a: Assertion) -> None:
        self.c.execute("INSERT OR REPLACE INTO records (ns, key, origin, op, hlc, cs_id, idx, seq, author, entry)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?)", (namespace, key, a.origin, a.op, a.hlc, a.cs_id, a.index,
                                                        a.seq, a.author, jsonc.dumps(a.entry).decode()))

    # --- held contact changes (issue 16, PROTOCOL.md §16) -----------------------------------
    def history(self, key: str) -> list[Assertion]:
        return [_assertion(r) for r in self.c.execute("SELECT * FROM held_history WHERE key=?", (key,))]

    def add_history(self, a: Assertion) -> None:
        self.c.execute("INSERT OR REPLACE INTO held_history (key, origin, op, hlc, cs_id, idx, seq, author, entry)"
                       " VALUES (?,?,?,?,?,?,?,?,?)", (a.key, a.origin, a.op, a.hlc, a.cs_id, a.index, a.seq,
                                                      a.author, jsonc.dumps(a.entry).decode() if a.entry else None))

    def holds(self, key: str) -> list[Assertion]:
        return [_assertion(r) for r in self.c.execute("SELECT * FROM held_ops WHERE key=?", (key,))]

    def add_hold(self, a: Assertion) -> None:
        self.c.execute("INSERT OR REPLACE INTO held_ops (key, origin, op, hlc, cs_id, idx, seq, author, entry)"
                       " VALUES (?,?,?,?,?,?,?,?,?)", (a.key, a.origin, a.op, a.hlc, a.cs_id, a.index, a.seq,
                                                      a.author, jsonc.dumps(a.entry).decode()))

    def replace_latest(self, key: str, latest: dict[str, Assertion]) -> None:
        self.c.execute("DELETE FROM assertions WHERE key=?", (key,))
        for a in latest.values():
            self.set_latest(a)

    def set_held(self, key: str, rows: list[Any]) -> None:
        self.c.execute("DELETE FROM held_puts WHERE key=?", (key,))
        for h in rows:
            self.c.execute(
                "INSERT INTO held_puts (put_ref, key, status, origin, hlc, takes_effect_ms, summary, entry, previous,"
                " lines) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (h.put.ref, key, h.status, h.put.origin, h.put.hlc, h.takes_effect_ms, json.dumps(h.summary()),
                 jsonc.dumps(h.put.entry or {}).decode(), jsonc.dumps(h.previous.entry or {}).decode(),
                 json.dumps(h.lines())))
    # --- end held contact changes -----------------------------------------------------------

    def reset(self) -> None:
        self._kept = {r["id"]: (r["received_at"], r["source"], r["published"])
                      for r in self.c.execute("SELECT id, received_at, source, published FROM log")}
        for table in ("log", "parked", "assertions", "withdrawals", "view", "refused", "key_deaths", "records",
                      "held_history", "held_ops", "held_puts"):
            self.c.execute(f"DELETE FROM {table}")
        self._written.clear()
        self._texts.clear()


@dataclass(frozen=True)
class LogProblem:
    origin: str
    seq: int
    problem: str


class Store:
    """A node's store file.  Open with :meth:`open` or :meth:`create`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, limits: Limits = Limits()) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.limits = limits
        self._manifest: mf.Manifest | None = None

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
            full = _disk_full(exc, path)
            if full is None:
                raise
            raise full from None
        return conn

    @classmethod
    def create(cls, path: Path, *, node_id: str, limits: Limits = Limits()) -> "Store":
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
    def open(cls, path: Path, *, limits: Limits = Limits()) -> "Store":
        if not path.exists():
            raise NotInitialised(f"no store at {path}: run `pocsync init` first (or `pocsync recover`)")
        store = cls(path, cls._connect(path), limits=limits)
        store.migrate()
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        with self.transaction():
            has_meta = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            current = int(self.get_meta("schema_version") or 0) if has_meta else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"store schema v{current} is newer than this pocsync (v{SCHEMA_VERSION}); upgrade",
                                 reason="schema_too_new")
            for n in range(current, SCHEMA_VERSION):
                schema.apply(self.conn, n)
                self.set_meta("schema_version", str(n + 1))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; nested use joins the outer one."""
        if self.conn.in_transaction:
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            full = _disk_full(exc, self.path)
            if full is None:
                raise
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise full from None

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
            self.conn.execute("INSERT INTO manifests (version, id, envelope, installed_at) VALUES (?,?,?,?)",
                              (m.version, m.id, m.to_bytes(), utcnow()))
            st = SQLiteState(self.conn, source="reevaluate", limits=self.limits)
            return Replica(st, m, limits=self.limits).reevaluate(now_ms=t)

    # --- the log ------------------------------------------------------------------
    def replica(self, *, source: str = "") -> Replica:
        return Replica(SQLiteState(self.conn, source=source, limits=self.limits),
                       self.require_manifest(), limits=self.limits)

    def receive(self, data: bytes, *, source: str = "import", now_ms_: int | None = None) -> Outcome:
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction():
            rep = self.replica(source=source)
            out = rep.receive(data, now_ms=t, source=source)
            self._note_own(out)
            return out

    def _note_own(self, out: Outcome) -> None:
        """Seeing our own origin's change-sets from elsewhere: keep the signing guard right."""
        me = self.get_meta("node_id")
        for o in [out, *out.also_accepted]:
            # Only verified claims count: an unverifiable parked item is anybody's word (issue 11, case 1).
            verified = o.status == "equivocation" or (
                o.status == "parked" and o.reason not in UNVERIFIED_PARK_REASONS and o.reason != "clock_skew")
            if o.origin == me and verified:
                self.set_meta("signing_blocked",
                              f"peers hold {me} seq {o.seq} that this store lacks or disagrees with ({o.reason})")

    def drop_unverified_parked(self, origin: str | None = None) -> int:
        """Forget parked items that never verified (of ``origin``, or all): what `recover` clears."""
        reasons = tuple(sorted(UNVERIFIED_PARK_REASONS))
        sql = f"DELETE FROM parked WHERE reason IN ({','.join('?' * len(reasons))})"
        args: tuple[Any, ...] = reasons
        if origin is not None:
            sql += " AND origin IS ?"
            args = (*reasons, origin)
        with self.transaction():
            return self.conn.execute(sql, args).rowcount

    def retry_parked(self, *, now_ms_: int | None = None, reason: str | None = None) -> list[Outcome]:
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction():
            return self.replica().retry_parked(now_ms=t, reason=reason)

    def note_announced_own(self, seq: int, by: str, *, signed_ms: int | None = None) -> None:
        """A peer's verified head vector says it holds this node's chain up to ``seq`` (0: none of it).

        ``signed_ms`` (the vector's hlc time) records the confirmation the CLI's signing guard asks for
        (:meth:`own_head_confirmation`; ADR 19).  A signed head vector proves who speaks, not that the
        change-set exists: a claim above this node's head blocks signing for at most ANNOUNCED_OWN_TTL
        (the pull it triggers fetches the verified change-sets well within that); a claim that expires
        unproven makes this node disregard that announcer's claims until it is proven right (issue 11:
        nothing unverified blocks signing beyond a bounded time)."""
        if signed_ms is not None and self._confirmation_unchanged(seq, by, signed_ms):
            # nothing to write (issue 13): no write transaction, no disk sync, for each head vector announced
            return
        with self.transaction():
            if signed_ms is not None and signed_ms >= int(self.get_meta("own_head_confirmed_ms") or 0):
                self.set_meta("own_head_confirmed_ms", str(signed_ms))
                self.set_meta("own_head_confirmed_by", by)
                self.set_meta("own_head_confirmed_seq", str(seq))
            distrusted = set(filter(None, (self.get_meta("announced_own_distrust") or "").split(",")))
            if by in distrusted:
                return
            own = self._own_head()
            if seq <= own:
                return
            announced = int(self.get_meta("announced_own_seq") or 0)
            active = announced > own and self._announcement_age() < ANNOUNCED_OWN_TTL
            if not active:
                self.set_meta("announced_own_at", utcnow())
            if not active or seq > announced:
                self.set_meta("announced_own_seq", str(seq))
                self.set_meta("announced_own_by", by)

    def own_head_confirmation(self) -> tuple[int, str, int] | None:
        """(signed at ms, by node, their view of this node's head seq) of the freshest peer head vector
        seen, or None when this store never saw one (never in contact with a peer)."""
        ms = self.get_meta("own_head_confirmed_ms")
        if ms is None:
            return None
        return int(ms), self.get_meta("own_head_confirmed_by") or "", int(self.get_meta("own_head_confirmed_seq") or 0)

    def _own_head(self) -> int:
        me = self.node_id
        return self.conn.execute("SELECT max(seq) AS m FROM log WHERE origin=?", (me,)).fetchone()["m"] or 0

    def _announcement_age(self) -> timedelta:
        at = self.get_meta("announced_own_at")
        if not at:
            return timedelta(0)
        try:
            then = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return ANNOUNCED_OWN_TTL
        return datetime.now(timezone.utc) - then

    def forget_announced_own(self) -> None:
        """What `recover` clears: a peer's unproven claim about this node's chain."""
        with self.transaction():
            for k in ("announced_own_seq", "announced_own_by", "announced_own_at"):
                self.set_meta(k, None)

    def signing_blocked(self) -> str | None:
        """Why this node must not sign, or None.

        A node never signs a seq it may have signed before: it refuses while a peer's fresh announcement
        says it holds more of its own chain than its log holds (for at most ANNOUNCED_OWN_TTL), while its
        own *verified* change-sets wait in the parking lot, or while a proof of its equivocation stands.
        """
        me = self.node_id
        own = self._own_head()
        announced = int(self.get_meta("announced_own_seq") or 0)
        by = self.get_meta("announced_own_by") or "a peer"
        if announced > own:
            if self._announcement_age() < ANNOUNCED_OWN_TTL:
                return f"{by} holds {me} seq {announced} but this store ends at seq {own}"
            with self.transaction():  # unproven in time: disregard this announcer until proven right
                distrusted = set(filter(None, (self.get_meta("announced_own_distrust") or "").split(",")))
                self.set_meta("announced_own_distrust", ",".join(sorted(distrusted | {by})))
                for k in ("announced_own_seq", "announced_own_by", "announced_own_at"):
                    self.set_meta(k, None)
        elif announced and self.get_meta("announced_own_distrust"):
            self.set_meta("announced_own_distrust", None)  # claims proven: everyone is believed again
        reason = self.get_meta("signing_blocked")
        if reason is None:
            return None
        # only what lies in the chain segment this node would sign next counts: a chain restart declared
        # by the root after an equivocation ends the block (the proof itself is kept as evidence); parked
        # items whose signature was never verified are claims by anybody and never block (ADR 14)
        seg = 0
        m = self.manifest()
        if m is not None and me in m.nodes:
            try:
                seg = m.nodes[me].segment(self.replica().next_position(me)[0]).seq
            except PocsyncError:
                seg = 0
        unverified = tuple(sorted(UNVERIFIED_PARK_REASONS))
        waiting = self.conn.execute(
            f"SELECT count(*) AS n FROM parked WHERE origin=? AND (seq IS NULL OR seq>=?) "
            f"AND reason NOT IN ({','.join('?' * len(unverified))})", (me, seg, *unverified)).fetchone()["n"]
        proofs = self.conn.execute("SELECT count(*) AS n FROM proofs WHERE origin=? AND seq>=?",
                                   (me, seg)).fetchone()["n"]
        if waiting == 0 and proofs == 0:
            self.set_meta("signing_blocked", None)
            return None
        return reason

    def edit(self, ops: list[dict[str, Any]], *, key: Ed25519PrivateKey, author: str,
             now_ms_: int | None = None) -> Outcome:
        """One local edit = one change-set, signed and applied in one immediate transaction."""
        with self.transaction():
            blocked = self.signing_blocked()
            if blocked:
                raise SigningRefused(f"this node must not sign: {blocked}. Run `pocsync recover` or have the root"
                                     " declare a chain restart")
            t = now_ms_ if now_ms_ is not None else now_ms()
            return self.replica(source="local").edit(ops, me=self.node_id, key=key, author=author, now_ms=t)

    # --- for the daemon -------------------------------------------------------------
    def unpublished(self, limit: int | None = None) -> list[tuple[int, bytes]]:
        """This node's change-sets not yet published, oldest first (at most ``limit``: a node that imported
        a long history of its own must not hold all of it in memory at once; issue 13)."""
        me = self.node_id
        sql = "SELECT seq, envelope FROM log WHERE origin=? AND published=0 ORDER BY seq"
        args: tuple[Any, ...] = (me,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (me, limit)
        return [(r["seq"], bytes(r["envelope"])) for r in self.conn.execute(sql, args)]

    def mark_published(self, seqs: list[int]) -> None:
        with self.transaction():
            self.conn.executemany("UPDATE log SET published=1 WHERE origin=? AND seq=?",
                                  [(self.node_id, s) for s in seqs])

    def batch_after(self, origin: str, after: int, *, limit: int, max_bytes: int) -> tuple[list[bytes], bool]:
        """Change-sets of ``origin`` with seq > ``after``, at most ``limit`` and about ``max_bytes``."""
        out: list[bytes] = []
        size = 0
        rows = self.conn.execute("SELECT envelope FROM log WHERE origin=? AND seq>? ORDER BY seq LIMIT ?",
                                 (origin, after, limit + 1)).fetchall()
        for r in rows[:limit]:
            env = bytes(r["envelope"])
            if out and size + len(env) > max_bytes:
                return out, True
            out.append(env)
            size += len(env)
        return out, len(rows) > limit

    def summary(self) -> dict[str, Any]:
        """What a head vector announces: heads, digest, refusal/quarantine counts, equivocations."""
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "heads": {o: (h.seq, h.id) for o, h in self.heads().items()},
            "digest": self.digest(),
            "refused": one("SELECT count(*) FROM refused"),
            "quarantined": one("SELECT count(*) FROM quarantine"),
            "equivocations": [(r["origin"], r["seq"]) for r in
                              self.conn.execute("SELECT DISTINCT origin, seq FROM proofs ORDER BY origin, seq")],
            "max_hlc": one("SELECT max(hlc) FROM log"),
        }

    def proof_envelopes(self) -> list[dict[str, Any]]:
        return [{"origin": r["origin"], "seq": r["seq"], "a": bytes(r["a"]).decode(), "b": bytes(r["b"]).decode()}
                for r in self.conn.execute("SELECT origin, seq, a, b FROM proofs ORDER BY origin, seq")]

    def add_proof(self, origin: str, seq: int, a: bytes, b: bytes, *, now_ms_: int | None = None) -> bool:
        t = now_ms_ if now_ms_ is not None else now_ms()
        with self.transaction():
            return self.replica(source="proof").add_proof(Proof(origin, seq, a, b), now_ms=t)

    def export(self, *, origin: str | None = None, after: int = 0) -> Iterator[bytes]:
        sql = "SELECT envelope FROM log WHERE seq > ?"
        args: list[Any] = [after]
        if origin:
            sql += " AND origin = ?"
            args.append(origin)
        sql += " ORDER BY origin, seq"
        for r in self.conn.execute(sql, args):
            yield bytes(r["envelope"])

    def verify_log(self) -> tuple[int, list[LogProblem]]:
        """Re-verify every stored signature and chain link against the current manifest."""
        m = self.require_manifest()
        problems: list[LogProblem] = []
        n = 0
        prev_by_origin: dict[str, tuple[int, str, str]] = {}
        for r in self.conn.execute("SELECT origin, seq, id, hlc, envelope FROM log ORDER BY origin, seq"):
            n += 1
            origin, seq = r["origin"], r["seq"]
            try:
                cs = csmod.verify(bytes(r["envelope"]), m, max_bytes=self.limits.max_envelope_bytes)
            except PocsyncError as exc:
                problems.append(LogProblem(origin, seq, f"{exc.reason}: {exc.message}"))
                continue
            if (cs.origin, cs.seq, cs.id, cs.hlc) != (origin, seq, r["id"], r["hlc"]):
                problems.append(LogProblem(origin, seq, "stored columns disagree with the signed payload"))
            node = m.nodes[origin]
            seg = node.segment(seq)
            last = prev_by_origin.get(origin)
            if seq == seg.seq:
                if cs.prev != seg.prev:
                    problems.append(LogProblem(origin, seq, "segment start with the wrong prev"))
            elif last is None or last[0] != seq - 1:
                problems.append(LogProblem(origin, seq, f"seq {seq - 1} missing from the log"))
            elif cs.prev != last[1]:
                problems.append(LogProblem(origin, seq, "prev does not match the previous change-set"))
            prev_by_origin[origin] = (seq, cs.id, cs.hlc)
        return n, problems

    # --- reading ----------------------------------------------------------------
    def digest(self) -> str:
        lines = [(r["ns"], r["key"], f"{r['cs_id']}#{r['idx']}") for r in self.conn.execute(
            "SELECT 'entry' AS ns, key, cs_id, idx FROM view UNION ALL SELECT ns, key, cs_id, idx FROM records")]
        lines += [tuple(x) for r in self.conn.execute("SELECT lines FROM held_puts") for x in json.loads(r["lines"])]
        return view_digest(lines)

    def heads(self) -> dict[str, Head]:
        return SQLiteState(self.conn).heads()

    def entries(self) -> list[dict[str, Any]]:
        return [self._view_row(r) for r in self.conn.execute("SELECT * FROM view ORDER BY key")]

    def entry(self, key: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM view WHERE key=?", (key,)).fetchone()
        if r is None:
            return None
        out = self._view_row(r)
        out["versions"] = [
            {"origin": a["origin"], "op": a["op"], "hlc": a["hlc"], "cs_id": a["cs_id"], "index": a["idx"],
             "seq": a["seq"], "author": a["author"], "entry": json.loads(a["entry"]) if a["entry"] else None}
            for a in self.conn.execute("SELECT * FROM assertions WHERE key=? ORDER BY origin", (key,))
        ]
        return out

    @staticmethod
    def _view_row(r: sqlite3.Row) -> dict[str, Any]:
        return {"key": r["key"], "entry": json.loads(r["entry"]), "origin": r["origin"], "hlc": r["hlc"],
                "cs_id": r["cs_id"], "index": r["idx"], "seq": r["seq"], "author": r["author"]}

    def versions_by_key(self) -> dict[str, list[dict[str, Any]]]:
        """Every origin's latest assertion, per key (provenance and the divergence report)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for a in self.conn.execute("SELECT * FROM assertions ORDER BY key, origin"):
            out.setdefault(a["key"], []).append(
                {"origin": a["origin"], "op": a["op"], "hlc": a["hlc"], "cs_id": a["cs_id"], "index": a["idx"],
                 "seq": a["seq"], "author": a["author"], "entry": json.loads(a["entry"]) if a["entry"] else None})
        return out

    # --- held contact changes (issue 16, PROTOCOL.md §16) ---------------------------------------
    def held_changes(self, key: str | None = None, *, with_entries: bool = False) -> list[dict[str, Any]]:
        """Held puts that have not taken effect (pending or objected), oldest first.

        Each row: key, put (ref), origin, author, hlc, status, fields (names of the guarded fields that
        change), notice, objection, takes_effect_ms and takes_effect (UTC), holds; with ``with_entries`` also
        the proposed ``entry`` and the ``previous`` one (never shown to PoCs or mailed, ADR 30).
        """
        sql = "SELECT * FROM held_puts" + (" WHERE key=?" if key is not None else "") + " ORDER BY hlc, put_ref"
        out = []
        for r in self.conn.execute(sql, (key,) if key is not None else ()):
            row = json.loads(r["summary"])
            row["takes_effect"] = None if row["takes_effect_ms"] is None else held.iso(row["takes_effect_ms"])
            if with_entries:
                row["entry"], row["previous"] = json.loads(r["entry"]), json.loads(r["previous"])
            out.append(row)
        return out
    def held_links_of(self, put_ref: str) -> int:
        return self.conn.execute("SELECT count(*) FROM held_links WHERE put_ref=?", (put_ref,)).fetchone()[0]

    def add_held_link(self, token_hash: str, put_ref: str, key: str) -> None:
        with self.transaction():
            self.conn.execute("INSERT INTO held_links (token_hash, put_ref, key, created_at) VALUES (?,?,?,?)",
                              (token_hash, put_ref, key, utcnow()))

    def held_link(self, token_hash: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM held_links WHERE token_hash=?", (token_hash,)).fetchone()
        return dict(r) if r else None

    def use_held_link(self, token_hash: str) -> bool:
        """Mark a link used; False when it was used already (single use)."""
        with self.transaction():
            cur = self.conn.execute("UPDATE held_links SET used_at=? WHERE token_hash=? AND used_at IS NULL",
                                    (utcnow(), token_hash))
            return cur.rowcount == 1

    def held_health(self) -> dict[str, Any]:
        """For /v1/health and the dashboard: counts and the objected changes (keys only, no contact data)."""
        rows = self.held_changes()
        return {"pending": sum(r["status"] == "pending" for r in rows),
                "objected": [{"key": r["key"], "put": r["put"], "origin": r["origin"],
                              "objection": r["objection"]} for r in rows if r["status"] == "objected"]}
    # --- end held contact changes -------------------------------------------------------------

    def quarantined(self) -> list[dict[str, Any]]:
        return [dict(r) | {"envelope": None} for r in
                self.conn.execute("SELECT n, id, reason, message, source, size, count, received_at, last_at"
                                  " FROM quarantine ORDER BY n")]

    def refused(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM refused ORDER BY origin, seq, idx")]

    def parked(self) -> list[dict[str, Any]]:
        return [dict(r) for r in
                self.conn.execute("SELECT id, origin, seq, reason, message, parked_at FROM parked ORDER BY origin, seq")]

    def proofs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in
                self.conn.execute("SELECT origin, seq, id_a, id_b, received_at FROM proofs ORDER BY origin, seq")]

    # --- templates (issue 17, PROTOCOL.md §18) ---------------------------------------------
    def templates(self) -> list[dict[str, Any]]:
        """The effective version of every template, sorted by id: the document plus ``origin`` and ``hlc``."""
        return [self._template_row(r) for r in
                self.conn.execute("SELECT * FROM records WHERE ns='template' ORDER BY key")]

    def template(self, template_id: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM records WHERE ns='template' AND key=?", (template_id,)).fetchone()
        return self._template_row(r) if r is not None else None

    @staticmethod
    def _template_row(r: sqlite3.Row) -> dict[str, Any]:
        return {**json.loads(r["entry"])["template"], "origin": r["origin"], "hlc": r["hlc"],
                "cs_id": r["cs_id"], "index": r["idx"]}
    # --- end of templates ------------------------------------------------------------------

    # --- tokens (ADR 13) ---------------------------------------------------------------
    def subject_state(self, key: str, jti: str | None, parent: str | None = None) -> dict[str, Any]:
        """For the token check: the live entry of ``key``, its latest death, whether ``jti`` (or the
        ``parent`` jti a session token was opened with) is revoked."""
        row = self.conn.execute("SELECT entry FROM view WHERE key=?", (key,)).fetchone()
        death = self.conn.execute("SELECT hlc FROM key_deaths WHERE key=?", (key,)).fetchone()
        revoked = any(j and self.is_revoked(j) for j in (jti, parent))
        return {"entry": json.loads(row["entry"]) if row else None, "dead_since": death["hlc"] if death else None,
                "revoked": revoked}

    def is_revoked(self, jti: str) -> bool:
        return self.conn.execute("SELECT 1 FROM revoked_tokens WHERE jti=?", (jti,)).fetchone() is not None

    def revoke_token(self, jti: str, *, exp: int, reason: str, now_s: int | None = None) -> None:
        """Put ``jti`` on this node's deny-list until ``exp``; expired entries are purged here."""
        t = now_s if now_s is not None else int(time.time())
        with self.transaction():
            self.conn.execute("DELETE FROM revoked_tokens WHERE exp < ?", (t,))
            self.conn.execute("INSERT OR IGNORE INTO revoked_tokens (jti, exp, reason, at) VALUES (?,?,?,?)",
                              (jti, exp, reason, utcnow()))

    def audit(self, *, actor: str, action: str, target: str, result: str, detail: str = "") -> None:
        with self.transaction():
            self.conn.execute("INSERT INTO audit (at, actor, action, target, result, detail) VALUES (?,?,?,?,?,?)",
                              (utcnow(), actor, action, target, result, detail))

    def audit_log(self, limit: int = 1000) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM audit ORDER BY n DESC LIMIT ?", (limit,))]

    # --- communication checks and freshness (issue 15, PROTOCOL.md §15) -- BEGIN i15a block ------------------
    # Read-only queries over the `records` registers the check and confirm ops derive (namespaces check,
    # verified, campaign, confirm).  No clock here: callers pass `now_ms` (the node's clock).
    def check_records(self, namespace: str, prefix: str = "") -> list[dict[str, Any]]:
        """Every register of ``namespace`` whose key starts with ``prefix`` (the op, its origin and hlc)."""
        sql = "SELECT * FROM records WHERE ns=?"
        args: list[Any] = [namespace]
        if prefix:
            sql += " AND key >= ? AND key < ?"
            args += [prefix, prefix + "\U0010ffff"]
        return [{"key": r["key"], "origin": r["origin"], "hlc": r["hlc"], "author": r["author"],
                 "op": json.loads(r["entry"])} for r in self.conn.execute(sql + " ORDER BY key", args)]

    def freshness_records(self, key: str | None = None) -> dict[str, dict[str, Any]]:
        """Per entry key: ``{"latest": {channel: {result, hlc, origin, campaign}}, "verified": {channel: hlc},
        "confirmed": hlc | None}`` — from the check, verified and confirm registers (all keys, or one)."""
        out: dict[str, dict[str, Any]] = {}

        def slot(k: str) -> dict[str, Any]:
            return out.setdefault(k, {"latest": {}, "verified": {}, "confirmed": None})

        prefix = f"{key}/" if key else ""
        for r in self.check_records("check", prefix):
            k, ch = r["key"].rsplit("/", 1)
            slot(k)["latest"][ch] = {"result": r["op"].get("result"), "hlc": r["hlc"], "origin": r["origin"],
                                     "campaign": r["op"].get("campaign")}
        for r in self.check_records("verified", prefix):
            k, ch = r["key"].rsplit("/", 1)
            slot(k)["verified"][ch] = r["hlc"]
        for r in self.check_records("confirm", key or ""):
            if key is None or r["key"] == key:
                slot(r["key"])["confirmed"] = r["hlc"]
        return out

    def freshness(self, *, now_ms_: int | None = None, key: str | None = None) -> list[dict[str, Any]]:
        """Every entry of the view (or one) with its freshness (core.checks.freshness) and, when
        ``now_ms_`` is given, ``overdue`` under the manifest's policy.freshness (None: not overdue)."""
        from pocsync.core import checks

        m = self.manifest()
        policy = m.policy.get("freshness") if m is not None else None
        on = m is not None and "freshness" in m.features
        recs = self.freshness_records(key)
        rows = [r for r in ([self._view_row(x) for x in self.conn.execute("SELECT * FROM view WHERE key=?", (key,))]
                            if key else self.entries())]
        out = []
        for r in rows:
            rec = recs.get(r["key"], {"latest": {}, "verified": {}, "confirmed": None})
            f = checks.freshness(r["entry"], modified_hlc=r["hlc"], latest=rec["latest"], verified=rec["verified"],
                                 confirmed_hlc=rec["confirmed"])
            f["overdue"] = (checks.overdue(r["entry"], f, policy, now_ms=now_ms_)
                            if now_ms_ is not None and on else None)
            out.append({"key": r["key"], "origin": r["origin"], "entry": r["entry"], **f})
        return out

    def overdue_counts(self, *, now_ms_: int) -> dict[str, int]:
        """Overdue entries per winning origin (for the dashboard and /metrics; no contact data)."""
        counts: dict[str, int] = {}
        for f in self.freshness(now_ms_=now_ms_):
            if f["overdue"]:
                counts[f["origin"]] = counts.get(f["origin"], 0) + 1
        return dict(sorted(counts.items()))

    def campaign_counts(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """Per campaign (from the `campaign` registers: the latest result of each channel within it):
        ``{"origins": [...], "results": {result: n}, "by_origin": {origin: {result: n}},
        "by_state": {State: {result: n}}, "channels": n, "response_seconds": [sorted ints], "last_hlc"}``.  A channel
        whose latest result is acknowledged, no_response or bounced was also sent.  ``limit``: only the campaigns
        with the latest results (any node may sign any number of campaign names)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.check_records("campaign"):
            campaign, state = r["key"].split("/", 2)[:2]
            c = out.setdefault(campaign, {"origins": set(), "results": {}, "by_origin": {}, "by_state": {},
                                          "channels": 0, "response_seconds": [], "last_hlc": ""})
            c["last_hlc"] = max(c["last_hlc"], r["hlc"])
            result = r["op"].get("result")
            c["origins"].add(r["origin"])
            c["channels"] += 1
            for bucket in (c["results"], c["by_origin"].setdefault(r["origin"], {}),
                           c["by_state"].setdefault(state, {})):
                bucket[result] = bucket.get(result, 0) + 1
            if result == "acknowledged" and isinstance(r["op"].get("response_seconds"), int):
                c["response_seconds"].append(r["op"]["response_seconds"])
        for c in out.values():
            c["origins"] = sorted(c["origins"])
            c["response_seconds"].sort()
        if limit is not None and len(out) > limit:
            keep = sorted(out, key=lambda k: (out[k]["last_hlc"], k), reverse=True)[:limit]
            out = {k: out[k] for k in keep}
        return dict(sorted(out.items()))
    # --- END i15a block ---------------------------------------------------------------------------------------

    # --- the read path and the audit group commit (issue 13; pocsync/live/readcache.py) ------------------
    def listing(self) -> dict[str, dict[str, list[str]]]:
        """State → kind → origins whose latest assertion of the key is a put: what
        ``divergence.networks_by_state(self.versions_by_key())`` gives, without decoding any entry."""
        out: dict[str, dict[str, list[str]]] = {}
        for r in self.conn.execute("SELECT key, origin FROM assertions WHERE op='put' ORDER BY key, origin"):
            state, _, kind = r[0].partition("/")
            out.setdefault(state, {}).setdefault(kind, []).append(r[1])
        return out

    def audit_many(self, rows: list[tuple[str, str, str, str, str, str]]) -> None:
        """Group commit of audit rows ``(at, actor, action, target, result, detail)``: one transaction."""
        with self.transaction():
            self.conn.executemany("INSERT INTO audit (at, actor, action, target, result, detail) VALUES (?,?,?,?,?,?)",
                                  rows)

    CONFIRMATION_GRAIN_MS = 1000  # a peer's confirmation of our head is recorded at most this often (per seq)

    def _confirmation_unchanged(self, seq: int, by: str, signed_ms: int) -> bool:
        """True when note_announced_own would change nothing that matters: the same peer confirmed the same
        seq less than CONFIRMATION_GRAIN_MS ago and the claim is not above our head (read-only check)."""
        rows = dict(self.conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('own_head_confirmed_ms', 'own_head_confirmed_by',"
            " 'own_head_confirmed_seq')").fetchall())
        ms = int(rows.get("own_head_confirmed_ms") or 0)
        if rows.get("own_head_confirmed_by") != by or rows.get("own_head_confirmed_seq") != str(seq):
            return False
        if not (ms <= signed_ms < ms + self.CONFIRMATION_GRAIN_MS):
            return False
        return seq <= self._own_head()
