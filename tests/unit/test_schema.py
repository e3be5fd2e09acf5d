"""The store's schema (sqlite-utils migrations) and the full-text search of the view (issue 12)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from pocsync.errors import StoreError
from pocsync.store import Store, schema
from pocsync.store import search as fts
from tests.support.fed import T0, Fed, put

V7 = Path(__file__).parent.parent / "fixtures" / "store" / "schema_v7.json"  # sqlite_master of a v7 store


def norm(sql: str | None) -> str | None:
    """A CREATE statement without identifier quotes, runs of white space or a final ``;``."""
    if sql is None:
        return None
    sql = re.sub(r'[\[\]"`]', "", sql)
    sql = re.sub(r"\s+", " ", sql).strip().rstrip(";")
    return re.sub(r"\s*([(),])\s*", r"\1", sql)


def master(conn: sqlite3.Connection) -> dict[tuple[str, str], str | None]:
    return {(t, n): norm(s) for t, n, s in conn.execute("SELECT type, name, sql FROM sqlite_master")}


def columns(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every table's columns (name, type, not null, default, pk) and indexes (name, unique, partial, columns)."""
    out: dict[str, list[tuple]] = {}
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
        cols = [tuple(r)[1:] for r in conn.execute(f'PRAGMA table_xinfo("{name}")')]
        idx = [
            (r[1], r[2], r[3], r[4], tuple(c[2] for c in conn.execute(f'PRAGMA index_info("{r[1]}")')))
            for r in conn.execute(f'PRAGMA index_list("{name}")')
        ]
        out[name] = cols + sorted(idx)
    return out


def v7_store(path: Path) -> None:
    """A store at schema version 7 as the raw-SQL migrations made it (deployed stores)."""
    conn = sqlite3.connect(path)
    for _kind, name, _tbl, sql in json.loads(V7.read_text()):
        if sql is not None and name != "sqlite_sequence":
            conn.execute(sql)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '7'), ('node_id', 'eu')")
    conn.commit()
    conn.close()


@pytest.fixture()
def fed() -> Fed:
    return Fed()


def make_store(tmp_path: Path, fed: Fed, node: str = "eu") -> Store:
    s = Store.create(tmp_path / f"{node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    return s


def sedit(store: Store, fed: Fed, ops: list[dict], t: int = T0) -> None:
    store.edit(ops, key=fed.key(store.node_id), author=f"staff@{store.node_id}", now_ms_=t)


# --- schema -------------------------------------------------------------------------------------------------
def test_migrations_1_to_7_make_the_schema_the_raw_sql_made(tmp_path: Path) -> None:
    with Store.create(tmp_path / "s.sqlite", node_id="eu") as s:
        new = master(s.conn)
        assert s.get_meta("schema_version") == str(schema.SCHEMA_VERSION) == "8"
    old = {(t, n): norm(sql) for t, n, _tbl, sql in json.loads(V7.read_text())}
    assert {k: new.get(k) for k in old} == old


def test_a_store_migrated_step_by_step_equals_a_fresh_one(tmp_path: Path) -> None:
    path = tmp_path / "steps.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for n in range(schema.SCHEMA_VERSION):  # one transaction per migration, reopened between steps
        conn.execute("BEGIN IMMEDIATE")
        schema.apply(conn, n)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(n + 1),))
        conn.execute("COMMIT")
        conn.close()
        conn = sqlite3.connect(path, isolation_level=None)
    with Store.create(tmp_path / "fresh.sqlite", node_id="eu") as fresh:
        assert master(conn) == master(fresh.conn)
        assert columns(conn) == columns(fresh.conn)
    conn.close()


def test_a_deployed_v7_store_migrates_to_the_fresh_schema_keeping_its_tables(tmp_path: Path) -> None:
    v7_store(tmp_path / "old.sqlite")
    conn = sqlite3.connect(tmp_path / "old.sqlite")
    before = {k: v for k, v in conn.execute("SELECT name, sql FROM sqlite_master")}
    conn.close()
    with Store.open(tmp_path / "old.sqlite") as old, Store.create(tmp_path / "fresh.sqlite", node_id="eu") as fresh:
        assert old.get_meta("schema_version") == "8"
        after = {k: v for k, v in old.conn.execute("SELECT name, sql FROM sqlite_master")}
        assert {k: after[k] for k in before} == before  # tables 1-7 untouched, byte for byte
        assert master(old.conn) == master(fresh.conn)
        assert columns(old.conn) == columns(fresh.conn)
    with Store.open(tmp_path / "old.sqlite") as again:  # idempotent: nothing left to apply
        assert again.get_meta("schema_version") == "8"


def test_a_migration_refuses_to_run_outside_a_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    with pytest.raises(RuntimeError):
        schema.apply(conn, 0)


# --- search -------------------------------------------------------------------------------------------------
def keys(store: Store, text: str) -> list[str]:
    return fts.search(store.conn, text)


def test_search_finds_an_entry_by_organisation_position_network_and_state(tmp_path: Path, fed: Fed) -> None:
    with make_store(tmp_path, fed) as s:
        sedit(
            s,
            fed,
            [
                put(
                    "DEU/technical",
                    organisation="Bundesamt für Beispielsicherheit",
                    position="Lagezentrum",
                    networks=["EU-CyCLONe"],
                ),
                put(
                    "FRA/technical",
                    organisation="Agence d'exemple",
                    position="Duty officer",
                    networks=["CSIRTs Network"],
                    notes="Joignable en français",
                ),
            ],
        )
        assert keys(s, "Bundesamt") == ["DEU/technical"]
        assert keys(s, "beispielsicherheit") == ["DEU/technical"]
        assert keys(s, "fur") == ["DEU/technical"]  # diacritics folded
        assert keys(s, "Lagezentrum") == ["DEU/technical"]
        assert keys(s, "duty officer") == ["FRA/technical"]
        assert keys(s, "CyCLONe") == ["DEU/technical"]
        assert keys(s, "csirts network") == ["FRA/technical"]
        assert keys(s, "Germany") == ["DEU/technical"]
        assert keys(s, "FRA") == ["FRA/technical"]
        assert keys(s, "franc") == ["FRA/technical"]  # prefix: France, français
        assert sorted(keys(s, "technical")) == ["DEU/technical", "FRA/technical"]
        assert keys(s, "cert-deu") == [] and keys(s, "example.org") == []  # contact addresses are not indexed
        assert keys(s, "+493012345678") == []


def test_search_ranks_and_needs_every_word(tmp_path: Path, fed: Fed) -> None:
    with make_store(tmp_path, fed) as s:
        sedit(
            s,
            fed,
            [
                put("DEU/technical", organisation="Cyber Agency"),
                put("ITA/technical", organisation="Agency", notes="cyber"),
            ],
        )
        assert keys(s, "cyber") == ["DEU/technical", "ITA/technical"]  # organisation weighs more than notes
        assert keys(s, "cyber agency") == ["DEU/technical", "ITA/technical"]
        assert keys(s, "cyber nowhere") == []


def test_the_index_follows_edits_and_deletes_of_the_view(tmp_path: Path, fed: Fed) -> None:
    with make_store(tmp_path, fed) as s:
        sedit(s, fed, [put("DEU/technical", organisation="Alpha Agency")])
        assert keys(s, "alpha") == ["DEU/technical"]
        sedit(s, fed, [put("DEU/technical", organisation="Beta Agency")], t=T0 + 1000)
        assert keys(s, "alpha") == [] and keys(s, "beta") == ["DEU/technical"]
        sedit(s, fed, [{"op": "delete", "key": "DEU/technical"}], t=T0 + 2000)
        assert keys(s, "beta") == [] and keys(s, "agency") == []
        n_view, n_search, n_fts = (
            s.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("view", "view_search", "view_search_fts")
        )
        assert n_view == n_search == n_fts == 0
        s.conn.execute("INSERT INTO view_search_fts (view_search_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("recursive", ["ON", "OFF"])
def test_the_index_follows_direct_sql_on_the_view(tmp_path: Path, fed: Fed, recursive: str) -> None:
    """Whatever code writes the view (INSERT OR REPLACE, UPDATE, DELETE), the triggers keep the index in step,
    with or without recursive triggers (an OR REPLACE fires the delete triggers only with them)."""
    with make_store(tmp_path, fed) as s:
        s.conn.execute(f"PRAGMA recursive_triggers={recursive}")
        sedit(s, fed, [put("DEU/technical", organisation="Gamma")])
        row = s.conn.execute("SELECT * FROM view WHERE key='DEU/technical'").fetchone()
        other = json.loads(row["entry"]) | {"organisation": "Delta"}
        with s.transaction():
            s.conn.execute(
                "INSERT OR REPLACE INTO view (key, origin, hlc, cs_id, idx, seq, author, entry)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (*tuple(row)[:7], json.dumps(other)),
            )
        assert keys(s, "gamma") == [] and keys(s, "delta") == ["DEU/technical"]
        with s.transaction():
            s.conn.execute("UPDATE view SET entry = json_set(entry, '$.organisation', 'Epsilon')")
        assert keys(s, "delta") == [] and keys(s, "epsilon") == ["DEU/technical"]
        with s.transaction():
            s.conn.execute("DELETE FROM view")  # as a re-derivation does
        assert keys(s, "epsilon") == []
        s.conn.execute("INSERT INTO view_search_fts (view_search_fts) VALUES ('integrity-check')")


def test_migration_8_indexes_the_rows_already_in_the_view(tmp_path: Path, fed: Fed) -> None:
    v7_store(tmp_path / "old.sqlite")
    conn = sqlite3.connect(tmp_path / "old.sqlite")
    conn.execute(
        "INSERT INTO view VALUES ('ITA/technical', 'eu', 'h', 'cs', 0, 1, 'a', ?)",
        (
            json.dumps(
                {"state": "ITA", "kind": "technical", "organisation": "Agenzia di esempio", "networks": ["Rete"]}
            ),
        ),
    )
    conn.commit()
    conn.close()
    with Store.open(tmp_path / "old.sqlite") as s:
        assert keys(s, "agenzia") == keys(s, "rete") == keys(s, "italy") == ["ITA/technical"]


@pytest.mark.parametrize(
    "text",
    [
        '"',
        '""',
        '"unclosed',
        "*",
        "a*",
        "*a",
        "NEAR",
        "NEAR(a b)",
        "a NEAR b",
        "-",
        "-a",
        "a -b",
        ":",
        "state:DEU",
        "organisation:x",
        "AND",
        "OR",
        "NOT",
        "a OR b",
        "(",
        ")",
        "^a",
        "a + b",
        "{state}: x",
        "'",
        "\\",
        "🙂",
        "a" * 200,
        "x " * 16,
    ],
)
def test_query_syntax_is_never_interpreted(tmp_path: Path, fed: Fed, text: str) -> None:
    with make_store(tmp_path, fed) as s:
        sedit(s, fed, [put("DEU/technical", organisation="Near Agency")])
        assert keys(s, text) in ([], ["DEU/technical"])


def test_operator_words_are_searched_as_words(tmp_path: Path, fed: Fed) -> None:
    with make_store(tmp_path, fed) as s:
        sedit(s, fed, [put("DEU/technical", organisation="Near Or Not Agency")])
        for text in ("NEAR", "or", "NOT agency", "near*", '"agency"', "agency:"):
            assert keys(s, text) == ["DEU/technical"], text


@pytest.mark.parametrize("text", ["", "   ", "a" * (fts.MAX_QUERY_CHARS + 1)])
def test_empty_or_long_queries_are_refused(text: str) -> None:
    with pytest.raises(fts.SearchError):
        fts.match_expression(text)


@pytest.mark.parametrize("text", ["\x00", "fra\x00x", "a\x00b", "bsi\x00", "a\x1bb", "x " * 17, "a" * 201])
def test_queries_the_index_cannot_take_are_refused_with_a_reason(tmp_path: Path, fed: Fed, text: str) -> None:
    """A NUL inside an FTS5 string made SQLite raise (a 500 at the API); more than MAX_TERMS words used to be cut
    silently, returning matches for fewer words than asked.  Both are now a SearchError (a 400 at the API)."""
    from pocsync.store.search import SearchError

    with make_store(tmp_path, fed) as s:
        sedit(s, fed, [put("DEU/technical", organisation="Near Agency")])
        with pytest.raises(SearchError):
            keys(s, text)


def test_pocsync_writes_leave_nothing_pending_and_a_search_never_waits_on_another_writer(
    tmp_path: Path, fed: Fed
) -> None:
    """The store re-indexes in each write transaction, so a search has nothing to write after pocsync's own
    edits.  After a foreign writer (here: raw SQL on another connection) it re-indexes if it can take the write
    lock at once; while another connection holds that lock it answers from the index as last committed instead
    of waiting busy_timeout (30 s) and failing with "database is locked" on the store's only thread."""
    import time

    with make_store(tmp_path, fed) as s:
        sedit(s, fed, [put("DEU/technical", organisation="Alpha Agency")])
        assert s.conn.execute("SELECT count(*) FROM view_search_pending").fetchone()[0] == 0
        other = sqlite3.connect(tmp_path / "eu.sqlite", isolation_level=None)
        try:
            other.execute("UPDATE view SET entry = json_set(entry, '$.organisation', 'Beta Agency')")
            other.execute("BEGIN IMMEDIATE")  # and keeps the write lock
            t0 = time.monotonic()
            assert keys(s, "alpha") == ["DEU/technical"]  # the index as last committed
            assert time.monotonic() - t0 < 2
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert keys(s, "alpha") == [] and keys(s, "beta") == ["DEU/technical"]  # re-indexed once the lock is free


def test_a_failure_while_committing_ends_the_transaction(
    tmp_path: Path, fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything failing between the body and COMMIT (here the index step, as an I/O error would) rolls back: a
    connection left inside the transaction would make every later transaction() join one never committed."""
    with make_store(tmp_path, fed) as s:

        def boom(conn: sqlite3.Connection) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(fts, "keep_up", boom)
        with pytest.raises(sqlite3.OperationalError):
            sedit(s, fed, [put("DEU/technical", organisation="Alpha")])
        assert not s.conn.in_transaction
        monkeypatch.undo()
        sedit(s, fed, [put("DEU/technical", organisation="Beta Agency")], t=T0 + 1000)
        other = sqlite3.connect(tmp_path / "eu.sqlite")
        try:
            assert other.execute("SELECT count(*) FROM view").fetchone()[0] == 1  # committed, seen by others
        finally:
            other.close()


def test_a_damaged_search_index_never_blocks_an_edit_and_is_rebuilt(tmp_path: Path, fed: Fed) -> None:
    """The index is derived data: damage to it (here its FTS5 shadow table) must not turn every edit and every
    receipt into 'database disk image is malformed'; it is rebuilt from view_search."""
    with make_store(tmp_path, fed) as s:
        sedit(s, fed, [put("DEU/technical", organisation="Alpha Agency")])
        s.conn.execute("DELETE FROM view_search_fts_data WHERE id > 1")
        try:  # SQLite may roll the whole transaction back on the corrupt page: then it is rebuilt, to be tried again
            sedit(s, fed, [put("DEU/technical", organisation="Beta Agency")], t=T0 + 1000)
        except StoreError as exc:
            assert exc.reason == "search_index_rebuilt" and not s.conn.in_transaction
            sedit(s, fed, [put("DEU/technical", organisation="Beta Agency")], t=T0 + 1000)
        sedit(s, fed, [put("FRA/technical", organisation="Gamma Agency")], t=T0 + 2000)
        assert keys(s, "beta") == ["DEU/technical"] and keys(s, "gamma") == ["FRA/technical"]
        assert keys(s, "alpha") == []
        s.conn.execute("INSERT INTO view_search_fts (view_search_fts) VALUES ('integrity-check')")
