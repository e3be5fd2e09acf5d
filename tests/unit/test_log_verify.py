"""``pocsync log verify`` applies the chain rule of acceptance (PROTOCOL.md §8 step 6), hlc included."""

from __future__ import annotations

from pathlib import Path

from pocsync.core import changeset as csmod
from pocsync.core.acceptance import audit_log
from pocsync.core.outcome import Limits
from pocsync.store import Store
from tests.support.fed import T0, Fed, put


def _hlc(ms: int) -> str:
    return f"{ms:013d}-0000"


def test_log_verify_reports_an_hlc_regression(tmp_path: Path) -> None:
    fed = Fed()
    first = fed.forge("eu", seq=1, prev=None, hlc=_hlc(T0 + 1000), ops=[put("DEU/technical")])
    first_id = csmod.peek_identity(first, max_bytes=1 << 20)[0]
    second = fed.forge("eu", seq=2, prev=first_id, hlc=_hlc(T0), ops=[put("FRA/technical")])  # below seq 1
    store = Store.create(tmp_path / "eu.sqlite", node_id="eu")
    store.install_manifest(fed.manifest, now_ms_=T0)
    assert store.receive(first, now_ms_=T0 + 2000).status == "accepted"
    out = store.receive(second, now_ms_=T0 + 2000)
    assert (out.status, out.reason) == ("quarantined", "hlc_regression")  # acceptance refuses it …
    with store.transaction():  # … so write it into the log by hand, as a damaged or tampered store would hold it
        store.conn.execute(
            "INSERT INTO log (origin, seq, id, hlc, prev, manifest, author, keyid, envelope, received_at, source,"
            " published) VALUES ('eu', 2, ?, ?, ?, 1, 'test@example.org', 'eu:k1', ?, '', 'test', 0)",
            (csmod.peek_identity(second, max_bytes=1 << 20)[0], _hlc(T0), first_id, second),
        )
    n, problems = store.verify_log()
    assert n == 2
    assert [(p.origin, p.seq, p.problem.split(":")[0]) for p in problems] == [("eu", 2, "hlc_regression")]
    # the same rule, on the rows alone
    rows = [
        ("eu", 1, first_id, _hlc(T0 + 1000), first),
        ("eu", 2, csmod.peek_identity(second, max_bytes=1 << 20)[0], _hlc(T0), second),
    ]
    assert [p.problem.split(":")[0] for p in audit_log(rows, fed.manifest, Limits())[1]] == ["hlc_regression"]
