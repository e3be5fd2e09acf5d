"""The CLI's signing guard (ADR 19): a restored old store does not sign until a peer confirmed its head."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import Federation, Node, entry, wait_for

pytestmark = pytest.mark.slow


def put(node: Node, key: str, *extra: str, ok: bool = True):
    return run("entry", "put", "--data", node.data, "-", *extra, input=json.dumps([entry(key)]), ok=ok)


def own_seq(node: Node) -> int:
    with node.store() as s:
        h = s.heads().get(node.name)
        return h.seq if h else 0


def test_restored_store_is_refused_until_a_peer_confirms_its_head(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"))
    eu = fed["eu"]
    toml = eu.data / "sync.toml"
    toml.write_text(toml.read_text().replace("[sync]\n", "[sync]\nown_head_max_age_seconds = 2\n"))
    try:
        put(eu, "DEU/technical")  # a new node's first edit, before any contact: allowed
        fed.start()
        fed.wait_converged()
        wait_for(lambda: eu.store().own_head_confirmation() is not None, 30, "a peer head vector at eu")
        eu.stop()
        backup = tmp_path / "backup"
        backup.mkdir()
        for f in eu.data.glob("store.sqlite*"):
            shutil.copy(f, backup / f.name)
        put(eu, "FRA/technical")  # the daemon was just stopped: the confirmation is fresh
        eu.start()
        fed.wait_converged()
        eu.stop()
        for f in eu.data.glob("store.sqlite*"):
            f.unlink()
        for f in backup.iterdir():
            shutil.copy(f, eu.data / f.name)  # the wrong way: an old backup restored without `recover`
        time.sleep(2.5)
        res = put(eu, "ITA/technical", ok=False)
        out = " ".join(res.output.split())  # rich wraps the line
        assert res.exit_code == 2 and "signing_refused" in out and "`pocsync run`" in out
        assert "--no-peer-check" in out and "older than own_head_max_age_seconds" in out and "Traceback" not in out
        assert own_seq(eu) == 1  # nothing signed: seq 2 would have been signed twice
        eu.start()  # the daemon pulls, learns that un holds eu seq 2, fetches it, and confirms the head
        wait_for(lambda: own_seq(eu) == 2, 30, "eu to catch up its own chain")
        wait_for(lambda: put(eu, "ITA/technical", ok=False).exit_code == 0, 30, "eu to sign again")
        fed.wait_converged()
        with fed["un"].store() as s:
            assert s.heads()["eu"].seq == 3 and s.proofs() == []
        # a node working alone (peers unreachable) may sign with --no-peer-check, audited
        fed.stop()
        time.sleep(2.5)
        assert put(eu, "AUT/technical", ok=False).exit_code == 2
        res = put(eu, "AUT/technical", "--no-peer-check")
        assert "without a peer check" in " ".join(res.output.split())
        with eu.store() as s:
            assert s.heads()["eu"].seq == 4
            audit = [a for a in s.audit_log() if a["action"] == "edit.no_peer_check"]
        assert len(audit) == 1 and "older than own_head_max_age_seconds" in audit[0]["detail"]
    finally:
        fed.stop()
