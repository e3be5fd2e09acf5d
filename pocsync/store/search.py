"""Full-text search of the merged view (issue 12): the PoC page's search box and ``GET /v1/entries?q=``.

``view_search`` holds, per key of the ``view`` table, the words a Point of Contact searches by: the State (its
code and its names), the kind, the organisation, the position, the person, the regional networks and the notes.
Not the e-mail addresses, phone numbers or keys: a search finds *whom* to contact, the entry then says *how*,
and an address typed into a search box should not be a way to learn whether it is listed.
``view_search_fts`` is its FTS5 index (sqlite-utils ``enable_fts(..., create_triggers=True)``).

Both are kept in step with ``view`` by SQLite triggers, whatever code writes the view (the store's Python never
touches them): an insert (also ``INSERT OR REPLACE``, whose implicit delete fires no delete trigger unless
``recursive_triggers`` is on: hence the ``BEFORE INSERT`` trigger), an update and a delete of a view row.
``view_search`` has an ``INTEGER PRIMARY KEY``, so the index's rowids survive a ``VACUUM`` (the view's
implicit rowids would not).

Cost: a write statement on ``view`` now also writes an FTS5 segment.  SQLite opens a statement savepoint for
a statement with triggers, and FTS5 flushes its pending terms at every savepoint, so the index is written
once per view row, not once per transaction: about 0.2 ms per view row on the 2-core test machine (20 µs
without the index), i.e. some 0.1 s for a directory of 400 entries re-derived.  On 400 entries a search
matching a few takes 0.3 ms, one matching half of them 3-6 ms (ranking every match); the API keeps the answer
per view digest and query (pocsync/live/readcache.py).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlite_utils import Database

from pocsync.errors import PocsyncError

MAX_QUERY_CHARS = 200  # longer queries are refused (GET /v1/entries answers 400)
MAX_TERMS = 16         # words beyond these are ignored

#: The searchable columns and how each is read from the view's ``entry`` JSON (``{e}``), in index order.
COLUMNS: dict[str, str] = {
    "state": "coalesce(json_extract({e}, '$.state'), '') || ' ' || coalesce((SELECT names FROM state_names"
             " WHERE code = json_extract({e}, '$.state')), '')",
    "kind": "json_extract({e}, '$.kind')",
    "organisation": "json_extract({e}, '$.organisation')",
    "position": "json_extract({e}, '$.position')",
    "person": "json_extract({e}, '$.person')",
    "networks": "(SELECT group_concat(value, ' ') FROM json_each({e}, '$.networks'))",
    "notes": "json_extract({e}, '$.notes')",
}
#: bm25 weights of COLUMNS (an organisation's or a position's word counts more than one in the notes).
WEIGHTS = (2.0, 1.0, 4.0, 3.0, 2.0, 2.0, 1.0)


class SearchError(PocsyncError):
    reason = "bad_query"


def _state_names() -> list[tuple[str, str]]:
    """(alpha-3 code, its English names) from pycountry, for a search by State name."""
    import pycountry

    out = []
    for c in pycountry.countries:
        names = {getattr(c, a, None) for a in ("name", "official_name", "common_name")}
        out.append((c.alpha_3, " ".join(sorted(n for n in names if n))))
    return out


def _row_sql(e: str) -> str:
    """The ``view_search`` columns of one view row's entry ``e`` (``new.entry``, ``entry``)."""
    return ", ".join(expr.format(e=e) for expr in COLUMNS.values())


def _triggers() -> list[str]:
    cols = ", ".join(COLUMNS)
    insert = (f"INSERT INTO view_search (key, {cols}) SELECT new.key, {_row_sql('new.entry')}"
              " WHERE json_valid(new.entry);")
    return [
        "CREATE TRIGGER view_index_bi BEFORE INSERT ON view BEGIN DELETE FROM view_search WHERE key = new.key; END",
        f"CREATE TRIGGER view_index_ai AFTER INSERT ON view BEGIN {insert} END",
        f"CREATE TRIGGER view_index_au AFTER UPDATE ON view BEGIN DELETE FROM view_search WHERE key = old.key;"
        f" {insert} END",
        "CREATE TRIGGER view_index_ad AFTER DELETE ON view BEGIN DELETE FROM view_search WHERE key = old.key; END",
    ]


def create(db: Database) -> None:
    """Migration 8: the tables, the FTS5 index and the triggers, filled from the current view."""
    db.table("state_names").create({"code": str, "names": str}, pk="code", not_null={"names"})
    db.table("state_names").insert_all([{"code": c, "names": n} for c, n in _state_names()])
    db.table("view_search").create({"id": int, "key": str, **{c: str for c in COLUMNS}}, pk="id", not_null={"key"})
    db.table("view_search").create_index(["key"], index_name="view_search_key", unique=True)
    db.table("view_search").enable_fts(list(COLUMNS), create_triggers=True, tokenize="unicode61 remove_diacritics 2")
    # raw: triggers that compute their rows from JSON (sqlite-utils writes triggers only for enable_fts)
    for sql in _triggers():
        db.execute(sql)
    db.execute(f"INSERT INTO view_search (key, {', '.join(COLUMNS)}) SELECT key, {_row_sql('entry')} FROM view"
               " WHERE json_valid(entry) ORDER BY key")


def check_query(text: str) -> str:
    """``text`` trimmed; SearchError when it is empty or longer than MAX_QUERY_CHARS."""
    text = text.strip()
    if not text:
        raise SearchError("the search text is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"the search text is longer than {MAX_QUERY_CHARS} characters")
    return text


def match_expression(text: str) -> str:
    """An FTS5 query for the words of ``text``: every word must occur, each as a prefix (type-ahead).

    Each word is one FTS5 string (``"..."``, an inner ``"`` doubled), so nothing the user types is FTS5
    syntax: ``AND``, ``NEAR``, ``*``, ``-``, ``:``, ``^`` and parentheses are only characters.  Words without a
    letter or digit (which would make an empty phrase) are dropped; "" when none is left.
    """
    words = [w for w in check_query(text).split() if any(ch.isalnum() for ch in w)][:MAX_TERMS]
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def search(conn: sqlite3.Connection, text: str, *, limit: int | None = None) -> list[str]:
    """Keys of the view's entries matching ``text`` (see :func:`match_expression`), best match first."""
    expr = match_expression(text)
    if not expr:
        return []
    sql = ("SELECT s.key FROM view_search_fts JOIN view_search s ON s.id = view_search_fts.rowid"
           f" WHERE view_search_fts MATCH ? ORDER BY bm25(view_search_fts, {', '.join(map(str, WEIGHTS))}), s.key")
    params: list[Any] = [expr]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [str(r[0]) for r in conn.execute(sql, params)]
