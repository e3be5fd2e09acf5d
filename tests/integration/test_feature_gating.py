"""Feature gating in a running federation (issue 10, PROTOCOL.md §8.3): the toy op kind `note`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocsync.nodedir import NodeDir
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for


@pytest.mark.slow
def test_toy_op_kind_in_a_running_federation_refused_before_the_flag_applied_after(tmp_path: Path) -> None:
    """Feature gating end to end: v2 switches toy-note off, a note signed then is refused everywhere;
    v3 switches it on (installed at one node, fetched by the others) and the note takes effect
    everywhere, with one digest."""
    fed = Federation(tmp_path, names=("un", "eu", "osce"))
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    run("manifest", "set-features", m2, "--features", "")
    fed.sign(m2)
    for n in fed.nodes:
        run("manifest", "install", "--data", fed[n].data, m2)
    fed["eu"].put(entry("AUT/technical"))
    with fed["eu"].store() as s:
        s.edit([{"op": "note", "key": "AUT", "text": "Exercise next week (fictional)"}],
               key=NodeDir.open(fed["eu"].data).signing_key("k1"), author="staff@eu")

    def notes_and_refusals(n: str) -> tuple[list, list, int]:
        with fed[n].store() as s:
            return ([tuple(r) for r in s.conn.execute("SELECT ns, key, origin FROM records")],
                    [r["reason"] for r in s.refused()], s.manifest().version)

    try:
        fed.start()
        fed.wait_converged()
        for n in fed.nodes:
            wait_for(lambda n=n: notes_and_refusals(n) == ([], ["feature_off"], 2), 30, f"{n} to refuse the note")
        m3 = tmp_path / "m3.json"
        m3.write_bytes(m2.read_bytes())
        run("manifest", "set-features", m3, "--features", "toy-note")
        fed.sign(m3)
        run("manifest", "install", "--data", fed["un"].data, m3)  # the others fetch it from un
        for n in fed.nodes:
            wait_for(lambda n=n: notes_and_refusals(n) == ([("note", "AUT", "eu")], [], 3), 60,
                     f"{n} to install v3 and apply the note")
        digest = fed.wait_converged()
        with fed["un"].store() as s:
            assert s.digest() == digest
    finally:
        fed.stop()
