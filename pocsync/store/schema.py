"""Schema of a node's store and its migrations.

Each migration is a list of SQL statements applied in one transaction; the
store's ``meta.schema_version`` names the last one applied.  Migrations only
ever append: a released migration is never edited.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: the first schema
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE manifests (version INTEGER PRIMARY KEY, id TEXT NOT NULL, envelope BLOB NOT NULL,
               installed_at TEXT NOT NULL)""",
        """CREATE TABLE log (origin TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,
               hlc TEXT NOT NULL, prev TEXT, manifest INTEGER NOT NULL, author TEXT NOT NULL,
               keyid TEXT NOT NULL, envelope BLOB NOT NULL, received_at TEXT NOT NULL, source TEXT NOT NULL,
               published INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (origin, seq))""",
        "CREATE INDEX log_hlc ON log (hlc)",
        """CREATE TABLE parked (id TEXT PRIMARY KEY, origin TEXT, seq INTEGER, reason TEXT NOT NULL,
               message TEXT NOT NULL, envelope BLOB NOT NULL, parked_at TEXT NOT NULL)""",
        "CREATE INDEX parked_pos ON parked (origin, seq)",
        """CREATE TABLE quarantine (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, reason TEXT NOT NULL,
               message TEXT NOT NULL, source TEXT NOT NULL, size INTEGER NOT NULL, envelope BLOB NOT NULL,
               received_at TEXT NOT NULL)""",
        """CREATE TABLE proofs (origin TEXT NOT NULL, seq INTEGER NOT NULL, id_a TEXT NOT NULL, id_b TEXT NOT NULL,
               a BLOB NOT NULL, b BLOB NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (origin, seq, id_a, id_b))""",
        """CREATE TABLE assertions (origin TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, hlc TEXT NOT NULL,
               cs_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, author TEXT NOT NULL, entry TEXT,
               PRIMARY KEY (origin, key))""",
        "CREATE INDEX assertions_key ON assertions (key)",
        """CREATE TABLE withdrawals (key TEXT PRIMARY KEY, origin TEXT NOT NULL, hlc TEXT NOT NULL,
               cs_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, author TEXT NOT NULL)""",
        """CREATE TABLE view (key TEXT PRIMARY KEY, origin TEXT NOT NULL, hlc TEXT NOT NULL, cs_id TEXT NOT NULL,
               idx INTEGER NOT NULL, seq INTEGER NOT NULL, author TEXT NOT NULL, entry TEXT NOT NULL)""",
        """CREATE TABLE refused (cs_id TEXT NOT NULL, idx INTEGER NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL,
               key TEXT NOT NULL, op TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
               PRIMARY KEY (cs_id, idx))""",
        """CREATE TABLE audit (n INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
               action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')""",
    ],
    # 2 (issue 11): the quarantine keeps a bounded, de-duplicated record (count, last seen); index by
    # source for the per-source caps; node-local token deny-list (ADR 13).
    [
        "ALTER TABLE quarantine ADD COLUMN count INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE quarantine ADD COLUMN last_at TEXT",
        "CREATE INDEX quarantine_id ON quarantine (id)",
        "CREATE INDEX quarantine_source ON quarantine (source, n)",
        "CREATE INDEX parked_reason ON parked (reason, parked_at)",
        """CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL, reason TEXT NOT NULL,
               at TEXT NOT NULL)""",
        # derived from the log like the view: the latest delete or withdrawal of each key by any origin
        "CREATE TABLE key_deaths (key TEXT PRIMARY KEY, hlc TEXT NOT NULL)",
        """INSERT INTO key_deaths (key, hlc) SELECT key, max(hlc) FROM (
               SELECT key, hlc FROM assertions WHERE op IN ('delete', 'withdraw')
               UNION ALL SELECT key, hlc FROM withdrawals) GROUP BY key""",
    ],
    # 3: effects of op kinds outside the entry namespace (PROTOCOL.md §8.2): the winning op per key
    [
        """CREATE TABLE records (ns TEXT NOT NULL, key TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL,
               hlc TEXT NOT NULL, cs_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL,
               author TEXT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (ns, key))""",
    ],
    # (issue 13) the publisher's "own change-sets not yet published" without reading every logged envelope
    [
        "CREATE INDEX log_unpublished ON log (origin, seq) WHERE published = 0",
    ],
    # held contact changes (issue 16, PROTOCOL.md §16), filled only while the feature is on: every entry op and
    # hold op per key (the sweep's input) and the held puts that have not taken effect (derived, with the
    # digest lines they contribute)
    [
        """CREATE TABLE held_history (key TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL, hlc TEXT NOT NULL,
               cs_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, author TEXT NOT NULL, entry TEXT,
               PRIMARY KEY (cs_id, idx))""",
        "CREATE INDEX held_history_key ON held_history (key)",
        """CREATE TABLE held_ops (key TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL, hlc TEXT NOT NULL,
               cs_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, author TEXT NOT NULL, entry TEXT,
               PRIMARY KEY (cs_id, idx))""",
        "CREATE INDEX held_ops_key ON held_ops (key)",
        """CREATE TABLE held_puts (put_ref TEXT PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL,
               origin TEXT NOT NULL, hlc TEXT NOT NULL, takes_effect_ms INTEGER, summary TEXT NOT NULL,
               entry TEXT NOT NULL, previous TEXT NOT NULL, lines TEXT NOT NULL)""",
        "CREATE INDEX held_puts_key ON held_puts (key)",
        # node-local (never replicated): the objection links this node mailed, by SHA-256 of the token
        """CREATE TABLE held_links (token_hash TEXT PRIMARY KEY, put_ref TEXT NOT NULL, key TEXT NOT NULL,
               created_at TEXT NOT NULL, used_at TEXT)""",
        "CREATE INDEX held_links_put ON held_links (put_ref)",
    ],
    # (issue 15, i15b) mail campaigns of communication checks, node-local (ADR 26): one row per campaign, one
    # per (campaign, entry key, channel id) with the hash of its single-use acknowledgement token; no address is
    # kept (it is read from the entry at send time). PoC reports of wrong entries (counts and text, node-local).
    [
        """CREATE TABLE check_campaigns (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, deadline_seconds INTEGER
               NOT NULL, selector TEXT NOT NULL, started_by TEXT NOT NULL, status TEXT NOT NULL, done_ms INTEGER)""",
        """CREATE TABLE check_targets (campaign TEXT NOT NULL, key TEXT NOT NULL, channel TEXT NOT NULL,
               label TEXT NOT NULL, status TEXT NOT NULL, token_hash TEXT UNIQUE, sent_ms INTEGER, deadline_ms INTEGER,
               result_ms INTEGER, response_seconds INTEGER, smtp_code INTEGER, skipped_by TEXT, error TEXT,
               attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (campaign, key, channel))""",
        "CREATE INDEX check_targets_status ON check_targets (status, deadline_ms)",
        """CREATE TABLE check_reports (n INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, key TEXT NOT NULL,
               origin TEXT NOT NULL, reporter TEXT NOT NULL, received_from TEXT NOT NULL, text TEXT NOT NULL,
               mailed INTEGER NOT NULL DEFAULT 0)""",
    ],
    # (ADR 37) verified change-sets refused by the chain checks, kept whole as evidence so that a second
    # change-set at the same (origin, seq) still makes a proof (PROTOCOL.md §8 step 6, §11); not cleared by reset
    [
        """CREATE TABLE chain_evidence (id TEXT PRIMARY KEY, origin TEXT NOT NULL, seq INTEGER NOT NULL,
               envelope BLOB NOT NULL, kept_at TEXT NOT NULL)""",
        "CREATE INDEX chain_evidence_pos ON chain_evidence (origin, seq)",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
