"""Wire identifiers are frozen: a module move or a rename must never change what is signed or exchanged.

A search-and-replace during the issue-12 package move once turned ``pocsync.snapshot/v1`` into
``pocsync.directory.snapshot/v1`` in code, docs and the independent verifiers at once, so that no other test
noticed; snapshots signed before would no longer have verified.  These literals pin each identifier to the
value PROTOCOL.md (§5, §13, §17) and ADR 32 give it.
"""

from pathlib import Path

import pocsync.core
from pocsync.directory import history, snapshot


def test_snapshot_and_history_identifiers() -> None:
    assert snapshot.SNAPSHOT_TYPE == "application/vnd.pocsync.snapshot+json"
    assert snapshot.SNAPSHOT_PAYLOAD == "pocsync.snapshot/v1"
    assert snapshot.CONTAINER_FORMAT == "pocsync.snapshot-file/v1"
    assert history.BUNDLE_FORMAT == "pocsync.history-bundle/v1"
    assert history.HISTORY_FORMAT == "pocsync.history/v1"


def test_core_identifiers_appear_verbatim_in_the_core() -> None:
    text = "".join(p.read_text() for p in Path(pocsync.core.__file__).parent.rglob("*.py"))
    for ident in (
        "application/vnd.pocsync.changeset+json",
        "pocsync.changeset/v1",
        "pocsync.heads/v1",
        "application/vnd.pocsync.manifest+json",
        "pocsync.manifest/v1",
        "pocsync.sealed/v1",
    ):
        assert ident in text, ident
