"""Reading a node's store: the view, its digest, provenance, what was not applied, templates."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pocsync.core.merge import view_digest
from pocsync.core.outcome import Head
from pocsync.store.base import StoreBase
from pocsync.store.sqlite import SQLiteState


class Reads(StoreBase):
    def summary(self) -> dict[str, Any]:
        """What a head vector announces: heads, digest, refusal/quarantine counts, equivocations."""

        def one(sql: str) -> Any:
            return self.conn.execute(sql).fetchone()[0]

        return {
            "heads": {o: (h.seq, h.id) for o, h in self.heads().items()},
            "digest": self.digest(),
            "refused": one("SELECT count(*) FROM refused"),
            "quarantined": one("SELECT count(*) FROM quarantine"),
            "equivocations": [
                (r["origin"], r["seq"])
                for r in self.conn.execute("SELECT DISTINCT origin, seq FROM proofs ORDER BY origin, seq")
            ],
            "max_hlc": one("SELECT max(hlc) FROM log"),
        }

    def proof_envelopes(self) -> list[dict[str, Any]]:
        return [
            {"origin": r["origin"], "seq": r["seq"], "a": bytes(r["a"]).decode(), "b": bytes(r["b"]).decode()}
            for r in self.conn.execute("SELECT origin, seq, a, b FROM proofs ORDER BY origin, seq")
        ]

    # --- reading ----------------------------------------------------------------
    def digest(self) -> str:
        lines = [
            (r["ns"], r["key"], f"{r['cs_id']}#{r['idx']}")
            for r in self.conn.execute(
                "SELECT 'entry' AS ns, key, cs_id, idx FROM view UNION ALL SELECT ns, key, cs_id, idx FROM records"
            )
        ]
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
            {
                "origin": a["origin"],
                "op": a["op"],
                "hlc": a["hlc"],
                "cs_id": a["cs_id"],
                "index": a["idx"],
                "seq": a["seq"],
                "author": a["author"],
                "entry": json.loads(a["entry"]) if a["entry"] else None,
            }
            for a in self.conn.execute("SELECT * FROM assertions WHERE key=? ORDER BY origin", (key,))
        ]
        return out

    @staticmethod
    def _view_row(r: sqlite3.Row) -> dict[str, Any]:
        return {
            "key": r["key"],
            "entry": json.loads(r["entry"]),
            "origin": r["origin"],
            "hlc": r["hlc"],
            "cs_id": r["cs_id"],
            "index": r["idx"],
            "seq": r["seq"],
            "author": r["author"],
        }

    def versions_by_key(self) -> dict[str, list[dict[str, Any]]]:
        """Every origin's latest assertion, per key (provenance and the divergence report)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for a in self.conn.execute("SELECT * FROM assertions ORDER BY key, origin"):
            out.setdefault(a["key"], []).append(
                {
                    "origin": a["origin"],
                    "op": a["op"],
                    "hlc": a["hlc"],
                    "cs_id": a["cs_id"],
                    "index": a["idx"],
                    "seq": a["seq"],
                    "author": a["author"],
                    "entry": json.loads(a["entry"]) if a["entry"] else None,
                }
            )
        return out

    def quarantined(self) -> list[dict[str, Any]]:
        return [
            dict(r) | {"envelope": None}
            for r in self.conn.execute(
                "SELECT n, id, reason, message, source, size, count, received_at, last_at FROM quarantine ORDER BY n"
            )
        ]

    def refused(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM refused ORDER BY origin, seq, idx")]

    def parked(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.conn.execute(
                "SELECT id, origin, seq, reason, message, parked_at FROM parked ORDER BY origin, seq"
            )
        ]

    def proofs(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.conn.execute("SELECT origin, seq, id_a, id_b, received_at FROM proofs ORDER BY origin, seq")
        ]

    # --- templates (issue 17, PROTOCOL.md §18) ---------------------------------------------
    def templates(self) -> list[dict[str, Any]]:
        """The effective version of every template, sorted by id: the document plus ``origin`` and ``hlc``."""
        return [
            self._template_row(r) for r in self.conn.execute("SELECT * FROM records WHERE ns='template' ORDER BY key")
        ]

    def template(self, template_id: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM records WHERE ns='template' AND key=?", (template_id,)).fetchone()
        return self._template_row(r) if r is not None else None

    @staticmethod
    def _template_row(r: sqlite3.Row) -> dict[str, Any]:
        return {
            **json.loads(r["entry"])["template"],
            "origin": r["origin"],
            "hlc": r["hlc"],
            "cs_id": r["cs_id"],
            "index": r["idx"],
        }

    # --- end of templates ------------------------------------------------------------------

    def listing(self) -> dict[str, dict[str, list[str]]]:
        """State → kind → origins whose latest assertion of the key is a put: what
        ``divergence.networks_by_state(self.versions_by_key())`` gives, without decoding any entry."""
        out: dict[str, dict[str, list[str]]] = {}
        for r in self.conn.execute("SELECT key, origin FROM assertions WHERE op='put' ORDER BY key, origin"):
            state, _, kind = r[0].partition("/")
            out.setdefault(state, {}).setdefault(kind, []).append(r[1])
        return out
