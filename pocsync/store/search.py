"""Full-text search of the merged view (issue 12): the PoC page's search box and ``GET /v1/entries?q=``.

``view_search`` holds, per key of the ``view`` table, the words a Point of Contact searches by: the State (its
code and its names), the kind, the organisation, the position, the person, the regional networks and the notes.
Not the e-mail addresses, phone numbers or keys: a search finds *whom* to contact, the entry then says *how*,
and an address typed into a search box should not be a way to learn whether it is listed.
``view_search_fts`` is its FTS5 index (sqlite-utils ``enable_fts(..., create_triggers=True)``).

Both are kept in step with ``view`` per transaction: SQLite triggers on ``view`` note the key of every row
written, whatever code writes it, in ``view_search_pending``; every write transaction of the store re-indexes
the noted rows just before its COMMIT (:func:`keep_up`), in three statements however many there are, so a
search never writes (it only catches up, without waiting, after a writer that bypasses the store).
Indexing in the triggers themselves would write an FTS5 segment per view row (SQLite opens a statement
savepoint for a statement with triggers, and FTS5 flushes its pending terms at every savepoint): about
0.2 ms per view row on the 2-core test machine against 20 µs without, which halved the ingest of large
change-sets (``pocsync bench --only ingest``).  ``view_search`` has an ``INTEGER PRIMARY KEY``, so the index's
rowids survive a ``VACUUM``.  On 400 entries a search matching a few takes 0.3 ms, one matching half of them
3-6 ms (ranking every match); the API keeps the answer per view digest and query (pocsync/live/readcache.py).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import Any

from sqlite_utils import Database

from pocsync.errors import PocsyncError, StoreError

log = logging.getLogger("pocsync.store")

MAX_QUERY_CHARS = 200  # longer queries are refused (GET /v1/entries answers 400)
MAX_TERMS = 16  # more words are refused (GET /v1/entries answers 400)

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
    """Every write of a view row notes its key in ``view_search_pending`` (a plain table: cheap).  An
    ``INSERT OR REPLACE`` notes the key through its insert, whether or not its implicit delete fires the
    delete trigger (``recursive_triggers``)."""
    note = "INSERT OR IGNORE INTO view_search_pending (key) VALUES ({}.key);"
    return [
        f"CREATE TRIGGER view_index_ai AFTER INSERT ON view BEGIN {note.format('new')} END",
        f"CREATE TRIGGER view_index_au AFTER UPDATE ON view BEGIN {note.format('old')} {note.format('new')} END",
        f"CREATE TRIGGER view_index_ad AFTER DELETE ON view BEGIN {note.format('old')} END",
    ]


def create(db: Database) -> None:
    """Migration 8: the tables, the FTS5 index and the triggers, filled from the current view."""
    db.table("state_names").create({"code": str, "names": str}, pk="code", not_null={"names"})
    db.table("state_names").insert_all([{"code": c, "names": n} for c, n in _state_names()])
    db.table("view_search").create({"id": int, "key": str, **{c: str for c in COLUMNS}}, pk="id", not_null={"key"})
    db.table("view_search").create_index(["key"], index_name="view_search_key", unique=True)
    db.table("view_search").enable_fts(list(COLUMNS), create_triggers=True, tokenize="unicode61 remove_diacritics 2")
    db.table("view_search_pending").create({"key": str}, pk="key")
    # raw: triggers that compute their rows from JSON (sqlite-utils writes triggers only for enable_fts)
    for sql in _triggers():
        db.execute(sql)
    db.execute(
        f"INSERT INTO view_search (key, {', '.join(COLUMNS)}) SELECT key, {_row_sql('entry')} FROM view"
        " WHERE json_valid(entry) ORDER BY key"
    )


def bring_up_to_date(conn: sqlite3.Connection, *, wait: bool = True) -> int:
    """Re-index the view rows written since the last call (their keys are in ``view_search_pending``), in three
    statements whatever their number; returns how many keys were pending.

    The store calls it inside every write transaction, just before COMMIT (``StoreBase.transaction``), so
    pocsync's own writes leave nothing pending.  Outside a transaction (a search, after some other writer)
    it opens its own; with ``wait=False`` it gives up at once, returning 0, when another connection holds
    the write lock, so that a search never waits on a writer (it then reads the index as last committed).
    """
    try:
        if conn.execute("SELECT 1 FROM view_search_pending LIMIT 1").fetchone() is None:
            return 0
    except sqlite3.OperationalError as exc:  # a store not yet at schema 8 (during its migration)
        if "no such table" in str(exc):
            return 0
        raise
    own = not conn.in_transaction
    if own:
        try:
            _begin(conn, wait=wait)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return 0
            raise
    try:
        pending = "(SELECT key FROM view_search_pending)"
        conn.execute(f"DELETE FROM view_search WHERE key IN {pending}")
        conn.execute(
            f"INSERT INTO view_search (key, {', '.join(COLUMNS)}) SELECT key, {_row_sql('entry')}"
            f" FROM view WHERE key IN {pending} AND json_valid(entry) ORDER BY key"
        )
        n = int(conn.execute("DELETE FROM view_search_pending").rowcount)
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return n


SQLITE_FULL = 13


def keep_up(conn: sqlite3.Connection) -> None:
    """:func:`bring_up_to_date` inside the caller's write transaction, under a savepoint: the index is derived
    data, so a failure there (a damaged FTS5 index) never fails the edit or the receipt that wrote the view.
    The savepoint is rolled back (the keys stay pending), the index is rebuilt from ``view_search`` once, and
    the re-index tried again; if it still fails, it is logged and the next write tries again.  Only a full
    disk is raised: the COMMIT would fail anyway, and the store reports it (``disk_full``); and when SQLite
    itself rolled the whole transaction back (a corrupt page), the index is rebuilt and a StoreError
    (``search_index_rebuilt``) says that nothing was written, so the caller tries again."""
    for attempt in (1, 2):
        conn.execute("SAVEPOINT search_index")
        try:
            bring_up_to_date(conn)
            conn.execute("RELEASE search_index")
            return
        except sqlite3.DatabaseError as exc:
            if not conn.in_transaction:  # SQLite rolled the whole transaction back (it does on a corrupt page)
                log.warning("search index damaged (%s): rebuilding it; the write is to be tried again", exc)
                _rebuild(conn)
                raise StoreError(
                    "the search index was damaged and has been rebuilt; nothing was written: try again",
                    reason="search_index_rebuilt",
                ) from None
            conn.execute("ROLLBACK TO search_index")
            conn.execute("RELEASE search_index")
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == SQLITE_FULL or "full" in str(exc):
                raise
            log.warning(
                "search index: re-indexing failed (%s); %s",
                exc,
                "rebuilding it" if attempt == 1 else "the entries stay pending until the next write",
            )
            if attempt == 1:
                with contextlib.suppress(sqlite3.DatabaseError):
                    conn.execute("INSERT INTO view_search_fts (view_search_fts) VALUES ('rebuild')")


def _rebuild(conn: sqlite3.Connection) -> None:
    """Rebuild the FTS5 index from ``view_search`` (its content table), in the caller's transaction or its own."""
    own = not conn.in_transaction
    if own:
        _begin(conn, wait=True)
    try:
        conn.execute("INSERT INTO view_search_fts (view_search_fts) VALUES ('rebuild')")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if own:
        conn.execute("COMMIT")


def _begin(conn: sqlite3.Connection, *, wait: bool) -> None:
    """``BEGIN IMMEDIATE``; with ``wait=False``, without waiting for a busy lock (busy_timeout 0 meanwhile)."""
    if wait:
        conn.execute("BEGIN IMMEDIATE")
        return
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")


def check_query(text: str) -> str:
    """``text`` trimmed; SearchError when it is empty, longer than MAX_QUERY_CHARS, holds a control character
    (SQLite's FTS5 parser cannot take a NUL inside a string) or more than MAX_TERMS words (every word must
    occur: dropping some would return matches the user did not ask for)."""
    text = text.strip()
    if not text:
        raise SearchError("the search text is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"the search text is longer than {MAX_QUERY_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text if ch not in " \t"):
        raise SearchError("the search text holds a control character")
    if sum(any(ch.isalnum() for ch in w) for w in text.split()) > MAX_TERMS:  # the words that are searched
        raise SearchError(f"the search text has more than {MAX_TERMS} words")
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
    """Keys of the view's entries matching ``text`` (see :func:`match_expression`), best match first.

    The index is first brought up to date with the view (:func:`bring_up_to_date`): ``conn`` must be able to
    write (the store's own connection, on the store worker)."""
    expr = match_expression(text)
    if not expr:
        return []
    bring_up_to_date(conn, wait=False)
    sql = (
        "SELECT s.key FROM view_search_fts JOIN view_search s ON s.id = view_search_fts.rowid"
        f" WHERE view_search_fts MATCH ? ORDER BY bm25(view_search_fts, {', '.join(map(str, WEIGHTS))}), s.key"
    )
    params: list[Any] = [expr]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    try:
        return [str(r[0]) for r in conn.execute(sql, params)]
    except sqlite3.DatabaseError as exc:  # a damaged index: rebuilt from view_search (derived data), then asked again
        if "malformed" not in str(exc) and "corrupt" not in str(exc):
            raise
        log.warning("search index damaged (%s): rebuilding it", exc)
        _rebuild(conn)
        return [str(r[0]) for r in conn.execute(sql, params)]
