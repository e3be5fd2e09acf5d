"""The derived tables of a node's store: what the core's ``State`` writes while applying change-sets.

Each origin's latest assertion of a key, withdrawals, the view (winners), refused ops, key deaths, the
last-writer-wins records, and the held-change tables (PROTOCOL.md §16).  :class:`DerivedRows` is the base of
:class:`pocsync.store.sqlite.SQLiteState`, which adds the log, parked and quarantined items and proofs.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pocsync.core import held, jsonc
from pocsync.core.merge import Assertion
from pocsync.core.outcome import Refusal
from pocsync.store.rows import assertion_of


class DerivedRows:
    """The derived tables on one SQLite connection (inside a transaction), with the writes' caches."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn
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
        row: sqlite3.Row | None = self.c.execute(sql, args).fetchone()
        return row

    # --- latest assertions, withdrawals, the view, refused ops, key deaths, records ---------------------
    def latest(self, origin: str, key: str) -> Assertion | None:
        r = self._one("SELECT * FROM assertions WHERE origin=? AND key=?", origin, key)
        return assertion_of(r) if r else None

    def latest_rank(self, origin: str, key: str) -> tuple[int, int] | None:
        """(seq, index) of ``latest(origin, key)`` without decoding its entry."""
        r = self._one("SELECT seq, idx FROM assertions WHERE origin=? AND key=?", origin, key)
        return (r[0], r[1]) if r else None

    def latest_for_key(self, key: str) -> list[Assertion]:
        out = []
        for r in self.c.execute(
            "SELECT origin, key, op, hlc, cs_id, idx, seq, author, entry FROM assertions WHERE key=?", (key,)
        ):
            mine = self._written.get((r[0], key))
            if mine is not None and mine.cs_id == r[4] and mine.index == r[5]:
                out.append(mine)  # written by this state: not decoded again
                continue
            a = assertion_of(r)
            if a.entry is not None:
                self._texts[id(a.entry)] = (a.entry, r["entry"])  # its stored text, if it wins
            out.append(a)
        return out

    def set_latest(self, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO assertions (origin, key, op, hlc, cs_id, idx, seq, author, entry)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (
                a.origin,
                a.key,
                a.op,
                a.hlc,
                a.cs_id,
                a.index,
                a.seq,
                a.author,
                self._text(a.entry) if a.entry is not None else None,
            ),
        )
        if len(self._written) > 4096:
            self._written.clear()
        self._written[(a.origin, a.key)] = a

    def note_death(self, key: str, hlc: str) -> None:
        """Tokens issued before an applied delete or withdrawal die (issue 11, case 5)."""
        self.c.execute(
            "INSERT INTO key_deaths (key, hlc) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET hlc=max(hlc, excluded.hlc)",
            (key, hlc),
        )

    def withdrawal(self, key: str) -> Assertion | None:
        r = self._one("SELECT *, 'withdraw' AS op, NULL AS entry FROM withdrawals WHERE key=?", key)
        return assertion_of(r) if r else None

    def set_withdrawal(self, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO withdrawals (key, origin, hlc, cs_id, idx, seq, author) VALUES (?,?,?,?,?,?,?)",
            (a.key, a.origin, a.hlc, a.cs_id, a.index, a.seq, a.author),
        )

    def winner(self, key: str) -> Assertion | None:
        r = self._one("SELECT *, 'put' AS op FROM view WHERE key=?", key)
        return assertion_of(r) if r else None

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
        return assertion_of(r) if r else None

    def set_record(self, namespace: str, key: str, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO records (ns, key, origin, op, hlc, cs_id, idx, seq, author, entry)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (namespace, key, a.origin, a.op, a.hlc, a.cs_id, a.index, a.seq, a.author, jsonc.dumps(a.entry).decode()),
        )

    # --- held contact changes (issue 16, PROTOCOL.md §16) -----------------------------------
    def history(self, key: str) -> list[Assertion]:
        return [assertion_of(r) for r in self.c.execute("SELECT * FROM held_history WHERE key=?", (key,))]

    def add_history(self, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO held_history (key, origin, op, hlc, cs_id, idx, seq, author, entry)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (
                a.key,
                a.origin,
                a.op,
                a.hlc,
                a.cs_id,
                a.index,
                a.seq,
                a.author,
                jsonc.dumps(a.entry).decode() if a.entry else None,
            ),
        )

    def holds(self, key: str) -> list[Assertion]:
        return [assertion_of(r) for r in self.c.execute("SELECT * FROM held_ops WHERE key=?", (key,))]

    def add_hold(self, a: Assertion) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO held_ops (key, origin, op, hlc, cs_id, idx, seq, author, entry)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (a.key, a.origin, a.op, a.hlc, a.cs_id, a.index, a.seq, a.author, jsonc.dumps(a.entry).decode()),
        )

    def replace_latest(self, key: str, latest: dict[str, Assertion]) -> None:
        self.c.execute("DELETE FROM assertions WHERE key=?", (key,))
        for a in latest.values():
            self.set_latest(a)

    def set_held(self, key: str, rows: list[held.Held]) -> None:
        self.c.execute("DELETE FROM held_puts WHERE key=?", (key,))
        for h in rows:
            self.c.execute(
                "INSERT INTO held_puts (put_ref, key, status, origin, hlc, takes_effect_ms, summary, entry, previous,"
                " lines) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    h.put.ref,
                    key,
                    h.status,
                    h.put.origin,
                    h.put.hlc,
                    h.takes_effect_ms,
                    json.dumps(h.summary()),
                    jsonc.dumps(h.put.entry or {}).decode(),
                    jsonc.dumps(h.previous.entry or {}).decode(),
                    json.dumps(h.lines()),
                ),
            )

    # --- end held contact changes -----------------------------------------------------------
