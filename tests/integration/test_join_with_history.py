"""A new node joins a running federation holding 5 000 change-sets of history (issue 9), with default
sync settings, over HTTP alone and over MQTT, and converges with no pull failure logged.

The history is built fast: each origin signs its change-sets in one transaction, and the other nodes
take them with ``pocsync log import`` of the exported log.  Change-sets carry four entries with long
notes (~6 KB each), so a default batch of 500 is ~3 MB sealed — far beyond what one socket read
returns (the bug: ``content.read(cap + 1)`` cut such bodies, and the node never caught up)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from pocsync.folder.nodedir import NodeDir
from tests.support.broker import Mosquitto
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow
HISTORY = {"eu": 3000, "osce": 2000}
KEYS = {"eu": ["AUT", "DEU", "FRA", "ITA"], "osce": ["AUT", "DEU", "FRA", "UKR"]}


def sign_history(data: Path, origin: str, n: int) -> None:
    nd = NodeDir.open(data)
    with nd.store() as store, store.transaction():
        key = nd.key_for_next_edit(store)
        for i in range(n):
            ops = [
                {
                    "op": "put",
                    "key": f"{state}/technical",
                    "entry": {
                        **entry(f"{state}/technical", notes=f"revision {i} of {origin} " + "x" * 1200),
                        "holder_epoch": "0000000000001-0000",
                    },
                }
                for state in KEYS[origin]
            ]
            store.edit(ops, key=key, author=f"bulk@{origin}")


def json_lines(log: Path, since: int) -> list[dict]:
    out = []
    for line in log.read_bytes()[since:].decode(errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_new_node_joins_a_federation_with_5000_changesets(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("eu", "osce", "arf"), pull_interval=30)  # 30 s: the default
    for n in fed.nodes:
        toml = fed[n].data / "sync.toml"
        toml.write_text(toml.read_text() + '\n[log]\nformat = "json"\n')
    pristine = tmp_path / "arf-pristine"
    shutil.copytree(fed["arf"].data, pristine)  # the new node: initialised, manifest installed, empty
    t0 = time.monotonic()
    for origin, n in HISTORY.items():
        sign_history(fed[origin].data, origin, n)
    for src, dst in (("eu", "osce"), ("osce", "eu")):
        log = run("log", "export", "--data", fed[src].data, "--origin", src).stdout_bytes
        out = run("log", "import", "--data", fed[dst].data, "-", input=log)
        assert f"{HISTORY[src]}" in out.output
    assert fed["eu"].digest() == fed["osce"].digest()
    print(f"history of {sum(HISTORY.values())} change-sets built in {time.monotonic() - t0:.1f} s")
    broker = None
    try:
        for transport in ("http", "mqtt"):
            if transport == "mqtt":
                fed.stop()
                broker = Mosquitto(tmp_path / "broker").start()
                shutil.rmtree(fed["arf"].data)
                shutil.copytree(pristine, fed["arf"].data)
                for n in fed.nodes:
                    toml = fed[n].data / "sync.toml"
                    toml.write_text(toml.read_text().replace('[mqtt]\nurl = ""', f'[mqtt]\nurl = "{broker.url}"'))
            fed.start("eu", "osce")
            offset = fed["arf"].log.stat().st_size if fed["arf"].log.exists() else 0
            t1 = time.monotonic()
            fed.start("arf")
            fed.wait_converged(timeout=600)
            took = time.monotonic() - t1
            wait_for(
                lambda: (
                    len(
                        {
                            (e["origin"], e["seq"])
                            for e in json_lines(fed["arf"].log, offset)
                            if e.get("event") == "changeset_accepted"
                        }
                    )
                    >= sum(HISTORY.values())
                ),
                30,
                "the last batch's accepted events to be logged",
            )
            events = json_lines(fed["arf"].log, offset)
            failures = [e for e in events if e.get("event") == "pull_failed" or "failed" in e.get("msg", "")]
            accepted = [e for e in events if e.get("event") == "changeset_accepted"]
            with fed["arf"].store() as s:
                heads = {o: h.seq for o, h in s.heads().items()}
            stats = fed["arf"].stats(as_node=fed["eu"])
            print(
                f"{transport}: a new node caught up with {sum(HISTORY.values())} change-sets in {took:.1f} s; "
                f"{stats['counters'].get('changesets_duplicate', 0)} duplicates, "
                f"{sum(p['bytes_received'] for p in stats['peers'].values()) / 1e6:.1f} MB received"
            )
            assert heads == HISTORY
            assert failures == [], failures[:5]
            assert stats["counters"].get("pull_errors", 0) == 0
            assert len({(e["origin"], e["seq"]) for e in accepted}) == sum(HISTORY.values())
            assert stats["counters"].get("changesets_duplicate", 0) == 0  # each change-set fetched once
            with fed["eu"].store() as s:
                big = max(len(e) for e in s.export(origin="eu")) * 500
            assert big > 2_000_000  # a default batch is several MB
            fed.stop()
    finally:
        fed.stop()
        if broker is not None:
            broker.stop()
