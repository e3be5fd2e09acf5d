"""Limits named in sync.toml, crossed on purpose: the node keeps serving and nothing is lost.

``max_batch`` and ``max_batch_bytes`` (batches served and requested by count and bytes): a catch-up far
larger than either completes in many batches, and a single change-set larger than ``max_batch_bytes``
still travels (alone). Other limits are crossed elsewhere: ``max_envelope_bytes`` and
``max_clock_skew_seconds`` (tests/unit/test_replica.py, tests/integration/test_cli.py),
``peer_requests_per_second`` (tests/integration/test_federation_faults.py), ``request_max_age_seconds``
and the clock (tests/chaos/harness.py keeps jumps under it), ``own_head_max_age_seconds``
(tests/chaos/test_signing_guard.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pocsync.folder.nodedir import NodeDir
from tests.support.nodes import Federation, entry

pytestmark = pytest.mark.slow


def test_catch_up_larger_than_max_batch_and_max_batch_bytes_completes_in_bounded_batches(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"))
    for n in ("un", "eu"):
        toml = fed[n].data / "sync.toml"
        toml.write_text(toml.read_text().replace("[sync]\n", "[sync]\nmax_batch = 7\nmax_batch_bytes = 4096\n"))
    nd = NodeDir.open(fed["eu"].data)
    with nd.store() as store:
        for i in range(60):
            key = f"{['AUT', 'DEU', 'FRA', 'ITA'][i % 4]}/technical"
            notes = "x" * 6000 if i == 30 else f"edit {i}"  # one change-set alone exceeds max_batch_bytes
            store.edit(
                [{"op": "put", "key": key, "entry": entry(key, notes=notes)}],
                key=nd.key_for_next_edit(store),
                author="limits",
            )
        big = len(store.conn.execute("SELECT envelope FROM log WHERE seq=31").fetchone()[0])
    assert big > 4096
    try:
        fed.start()
        fed.wait_converged(timeout=120)
        with fed["un"].store() as s:
            assert s.heads()["eu"].seq == 60
        log = fed["eu"].log.read_text()
        batches = re.findall(r"GET /v1/peer/changesets\?origin=eu&after=(\d+)&limit=(\d+) HTTP/1.1\" 200", log)
        assert all(int(limit) <= 7 for _, limit in batches)
        afters = sorted({int(a) for a, _ in batches})
        with fed["un"].store() as s:
            size = {
                r["seq"]: len(r["envelope"]) for r in s.conn.execute("SELECT seq, envelope FROM log WHERE origin='eu'")
            }
        for a, b in zip(afters, afters[1:] + [60]):  # each batch: seqs a+1..b
            assert b - a <= 7
            assert b - a == 1 or sum(size[q] for q in range(a + 1, b + 1)) <= 4096, (a, b)
        assert 30 in afters and 31 in afters  # the oversize one (seq 31) came in a batch of its own
        assert len(afters) > 60 / 7
        assert fed["eu"].up() and fed["un"].up()
    finally:
        fed.stop()
