"""``pocsync log verify`` reports a tampered origin column as a problem, never as a crash (KeyError)."""

from __future__ import annotations

from pathlib import Path

from pocsync.store import Store
from tests.support.fed import T0, Fed, put


def test_a_row_whose_origin_column_was_changed_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    fed = Fed()
    with Store.create(tmp_path / "eu.sqlite", node_id="eu") as s:
        s.install_manifest(fed.manifest, now_ms_=T0)
        s.edit([put("AUT/diplomatic")], key=fed.key("eu"), author="staff@eu", now_ms_=T0)
        s.edit([put("DEU/technical")], key=fed.key("eu"), author="staff@eu", now_ms_=T0 + 1)
        with s.transaction():
            s.conn.execute("UPDATE log SET origin = 'zz' WHERE seq = 1")
        n, problems = s.verify_log()
    assert n == 2
    by_pos = {(p.origin, p.seq): p.problem for p in problems}
    assert "disagree" in by_pos[("zz", 1)]
    assert "seq 1 missing" in by_pos[("eu", 2)]  # the real seq 1 of eu is no longer where the chain needs it
