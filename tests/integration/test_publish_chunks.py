"""A node that imported a long history of its own publishes it in bounded rounds (issue 13): every
change-set ends published and at its peer, without the publisher holding the whole history in memory."""

from __future__ import annotations

import sqlite3

import pytest

from pocsync.bench.history import chain
from pocsync.folder.nodedir import NodeDir
from pocsync.node.daemon import PUBLISH_CHUNK
from tests.support.cli import run
from tests.support.nodes import Federation, wait_for

pytestmark = pytest.mark.slow


def count(store, sql: str) -> int:
    c = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()


def test_an_imported_history_longer_than_a_round_is_published_in_rounds(tmp_path) -> None:
    n = 2 * PUBLISH_CHUNK + 37
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=2)
    eu = fed["eu"]
    nd = NodeDir.open(eu.data)
    name = nd.signing_key_names()[-1]
    history = tmp_path / "eu-history.jsonl"
    history.write_bytes(
        b"".join(
            e + b"\n"
            for e in chain(
                origin="eu",
                key=nd.signing_key(name),
                keyid=f"eu:{name}",
                manifest=1,
                count=n,
                keys=["DEU/technical", "AUT/technical", "FRA/diplomatic"],
            )
        )
    )
    run("log", "import", "--data", eu.data, history)
    store = eu.data / "store.sqlite"
    assert count(store, "SELECT count(*) FROM log WHERE origin='eu' AND published=0") == n
    fed.start()
    try:
        wait_for(
            lambda: count(store, "SELECT count(*) FROM log WHERE origin='eu' AND published=0") == 0,
            120,
            "every imported change-set to be published",
        )
        wait_for(
            lambda: count(fed["un"].data / "store.sqlite", "SELECT max(seq) FROM log WHERE origin='eu'") == n,
            120,
            "un to hold the whole history",
        )
    finally:
        fed.stop()
