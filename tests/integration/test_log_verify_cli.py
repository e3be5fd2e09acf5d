"""`pocsync log verify` applies acceptance's chain rule (PROTOCOL.md §8 step 6), hlc regression included."""

from __future__ import annotations

import json
from pathlib import Path

from pocsync.core import changeset as csmod
from pocsync.folder.nodedir import NodeDir
from tests.support.cli import ENTRIES, LocalFederation, run


def test_log_verify_reports_an_hlc_regression_in_the_stored_log(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path)
    fed.put("eu", ENTRIES["eu"])
    nd = NodeDir.open(fed.data("eu"))
    name = nd.signing_key_names()[0]
    with nd.store() as store:
        head = store.heads()["eu"]
        earlier = f"{int(head.hlc[:13]) - 1000:013d}-0000"  # below seq 1's hlc: acceptance refuses it
        payload = csmod.build_payload(
            origin="eu",
            seq=head.seq + 1,
            prev=head.id,
            hlc=earlier,
            manifest=store.require_manifest().version,
            author="test@example.org",
            ops=[{"op": "delete", "key": "DEU/technical"}],
        )
        env = csmod.sign(payload, keyid=f"eu:{name}", key=nd.signing_key(name))
        with store.transaction():  # a damaged or tampered log, written past acceptance
            store.conn.execute(
                "INSERT INTO log (origin, seq, id, hlc, prev, manifest, author, keyid, envelope, received_at,"
                " source, published) VALUES ('eu', ?, ?, ?, ?, ?, 'test@example.org', ?, ?, '', 'test', 1)",
                (
                    head.seq + 1,
                    csmod.changeset_id(payload),
                    earlier,
                    head.id,
                    store.require_manifest().version,
                    f"eu:{name}",
                    env,
                ),
            )
    res = run("log", "verify", "--data", fed.data("eu"), "--json", ok=False)
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["verified"] == head.seq + 1
    assert [(p["origin"], p["seq"], p["problem"].split(":")[0]) for p in out["problems"]] == [
        ("eu", head.seq + 1, "hlc_regression")
    ]
