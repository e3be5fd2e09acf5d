"""Fast tests of the small hooks the chaos harness relies on: the clock offset file and the record of
peer head confirmations the CLI's signing guard reads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pocsync import clock
from pocsync.store import Store


def test_clock_offset_file_moves_the_node_clock_forward_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "offset"
    monkeypatch.delenv(clock.ENV, raising=False)
    assert abs(clock.now_ms() - time.time_ns() // 10**6) < 1000
    monkeypatch.setenv(clock.ENV, str(f))
    assert abs(clock.now_ms() - time.time_ns() // 10**6) < 1000  # missing file: no offset
    f.write_text("45000")
    assert 44_000 < clock.now_ms() - time.time_ns() // 10**6 < 46_000
    f.write_text("-30000")
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 1_000_000))  # a new mtime even on a coarse clock
    assert -31_000 < clock.now_ms() - time.time_ns() // 10**6 < -29_000
    f.write_text("garbage")
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert abs(clock.now_ms() - time.time_ns() // 10**6) < 1000  # unreadable: no offset


def test_peer_head_confirmation_keeps_the_freshest_signed_vector(tmp_path: Path) -> None:
    with Store.create(tmp_path / "s.sqlite", node_id="eu") as s:
        assert s.own_head_confirmation() is None  # never in contact
        s.note_announced_own(0, "un", signed_ms=1_000)
        assert s.own_head_confirmation() == (1_000, "un", 0)
        s.note_announced_own(3, "osce", signed_ms=5_000)
        s.note_announced_own(2, "arf", signed_ms=4_000)  # older vector (e.g. a retained MQTT message): ignored
        assert s.own_head_confirmation() == (5_000, "osce", 3)
        assert s.get_meta("announced_own_seq") == "3"
        s.note_announced_own(1, "un")  # without a signed time: only the announced seq counts
        assert s.own_head_confirmation() == (5_000, "osce", 3)
