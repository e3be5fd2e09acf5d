"""Node-local records of a store: held-change objection links, revoked tokens and the audit log."""

from __future__ import annotations

import json
import time
from typing import Any

from pocsync.core import held
from pocsync.store.base import StoreBase
from pocsync.store.rows import utcnow


class LocalRecords(StoreBase):
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
        n: int = self.conn.execute("SELECT count(*) FROM held_links WHERE put_ref=?", (put_ref,)).fetchone()[0]
        return n

    def add_held_link(self, token_hash: str, put_ref: str, key: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO held_links (token_hash, put_ref, key, created_at) VALUES (?,?,?,?)",
                (token_hash, put_ref, key, utcnow()),
            )

    def held_link(self, token_hash: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM held_links WHERE token_hash=?", (token_hash,)).fetchone()
        return dict(r) if r else None

    def use_held_link(self, token_hash: str) -> bool:
        """Mark a link used; False when it was used already (single use)."""
        with self.transaction():
            cur = self.conn.execute(
                "UPDATE held_links SET used_at=? WHERE token_hash=? AND used_at IS NULL", (utcnow(), token_hash)
            )
            return cur.rowcount == 1

    def held_health(self) -> dict[str, Any]:
        """For /v1/health and the dashboard: counts and the objected changes (keys only, no contact data)."""
        rows = self.held_changes()
        return {
            "pending": sum(r["status"] == "pending" for r in rows),
            "objected": [
                {"key": r["key"], "put": r["put"], "origin": r["origin"], "objection": r["objection"]}
                for r in rows
                if r["status"] == "objected"
            ],
        }

    # --- end held contact changes -------------------------------------------------------------

    # --- tokens (ADR 13) ---------------------------------------------------------------
    def subject_state(self, key: str, jti: str | None, parent: str | None = None) -> dict[str, Any]:
        """For the token check: the live entry of ``key``, its latest death, whether ``jti`` (or the
        ``parent`` jti a session token was opened with) is revoked."""
        row = self.conn.execute("SELECT entry FROM view WHERE key=?", (key,)).fetchone()
        death = self.conn.execute("SELECT hlc FROM key_deaths WHERE key=?", (key,)).fetchone()
        revoked = any(j and self.is_revoked(j) for j in (jti, parent))
        return {
            "entry": json.loads(row["entry"]) if row else None,
            "dead_since": death["hlc"] if death else None,
            "revoked": revoked,
        }

    def is_revoked(self, jti: str) -> bool:
        return self.conn.execute("SELECT 1 FROM revoked_tokens WHERE jti=?", (jti,)).fetchone() is not None

    def revoke_token(self, jti: str, *, exp: int, reason: str, now_s: int | None = None) -> None:
        """Put ``jti`` on this node's deny-list until ``exp``; expired entries are purged here."""
        t = now_s if now_s is not None else int(time.time())
        with self.transaction():
            self.conn.execute("DELETE FROM revoked_tokens WHERE exp < ?", (t,))
            self.conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, exp, reason, at) VALUES (?,?,?,?)",
                (jti, exp, reason, utcnow()),
            )

    def audit(self, *, actor: str, action: str, target: str, result: str, detail: str = "") -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO audit (at, actor, action, target, result, detail) VALUES (?,?,?,?,?,?)",
                (utcnow(), actor, action, target, result, detail),
            )

    def audit_log(self, limit: int = 1000) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM audit ORDER BY n DESC LIMIT ?", (limit,))]

    def audit_many(self, rows: list[tuple[str, str, str, str, str, str]]) -> None:
        """Group commit of audit rows ``(at, actor, action, target, result, detail)``: one transaction."""
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO audit (at, actor, action, target, result, detail) VALUES (?,?,?,?,?,?)", rows
            )
