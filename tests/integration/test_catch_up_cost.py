"""Catch-up moves only the missing change-sets: a node that missed k = 10 change-sets of a history
of 10 000 receives a number of bytes bounded by a small multiple of those 10."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocsync.folder.nodedir import NodeDir
from tests.support.cli import run
from tests.support.nodes import Federation, entry

pytestmark = pytest.mark.slow
HISTORY, K = 10_000, 10


def test_catch_up_receives_only_what_is_missing(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("eu", "osce"), pull_interval=3600)
    nd = NodeDir.open(fed["eu"].data)
    with nd.store() as store, store.transaction():  # build the history fast: one transaction
        key = nd.key_for_next_edit(store)
        for i in range(HISTORY - K):
            store.edit(
                [
                    {
                        "op": "put",
                        "key": "DEU/technical",
                        "entry": {
                            **entry("DEU/technical", notes=f"revision {i}"),
                            "holder_epoch": "0000000000001-0000",
                        },
                    }
                ],
                key=key,
                author="bulk",
            )
    run(
        "log",
        "import",
        "--data",
        fed["osce"].data,
        "-",
        input=run("log", "export", "--data", fed["eu"].data).stdout_bytes,
    )
    assert fed["eu"].digest() == fed["osce"].digest()
    try:
        fed.start("eu")  # osce is down while eu signs K more change-sets
        with nd.store() as store:
            for i in range(K):
                store.edit(
                    [
                        {
                            "op": "put",
                            "key": "FRA/technical",
                            "entry": {
                                **entry("FRA/technical", notes=f"missed {i}"),
                                "holder_epoch": "0000000000001-0000",
                            },
                        }
                    ],
                    key=nd.key_for_next_edit(store),
                    author="late",
                )
            missed = list(store.export(origin="eu", after=HISTORY - K))
        assert len(missed) == K
        fed.start("osce")  # pulls on start: node info, head vector, then only the missing change-sets
        fed.wait_converged(timeout=120)
        stats = fed["osce"].stats(as_node=fed["eu"])
        received = sum(p["bytes_received"] for p in stats["peers"].values())
        size = sum(len(e) for e in missed)
        print(
            f"catch-up: {K} missed change-sets of {size} bytes; received {received} bytes "
            f"({received / size:.2f}x) out of a history of {HISTORY}, all requests included"
        )
        assert stats["heads"]["eu"]["seq"] == HISTORY
        assert size <= received <= 3 * size + 4096
    finally:
        fed.stop()
