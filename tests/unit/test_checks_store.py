"""The store's freshness block (issue 15): SQLite registers equal the in-memory replica's, the queries the
campaign dashboard uses (campaign counts, overdue per origin), and exports whose derived freshness columns
an import ignores (the export → import round trip stays exact)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pocsync.core import checks
from pocsync.core import manifest as mf
from pocsync.core.changeset import changeset_id
from pocsync.core.envelope import parse
from pocsync.core.replica import MemoryState, Replica
from pocsync.directory import exports, freshness
from pocsync.directory.adapters import Mapping
from pocsync.store import Store
from tests.support.data import entry
from tests.support.fed import T0, Fed

FED = Fed()
POLICY = {"confirm_days": 10, "verify_days": 5, "networks": {"csirt-net": {"verify_days": 2}}}
M_ON = FED.signed(
    mf.set_policy(
        mf.set_features(mf.next_version(FED.manifest.payload), ["comm-checks", "freshness"]), "freshness", POLICY
    )
)
DAY = checks.DAY_MS
DEU = entry("DEU/technical", emails=["cert-deu@example.org", "backup@example.org"], networks=["csirt-net"], full=True)
FRA = entry("FRA/technical", emails=["cert-fra@example.org"], full=True)
E1, E2 = (checks.channel_id("email", a) for a in DEU["emails"])
PH = checks.channel_id("phone", DEU["phones"][0])
EF = checks.channel_id("email", FRA["emails"][0])


def chk(key: str, channel: str, result: str, campaign: str | None = None, **more: Any) -> dict:
    return {"op": "check", "key": key, "channel": channel, "result": result, "campaign": campaign, **more}


def history() -> list[bytes]:
    steps = [
        (
            "eu",
            0,
            [{"op": "put", "key": "DEU/technical", "entry": DEU}, {"op": "put", "key": "FRA/technical", "entry": FRA}],
        ),
        (
            "eu",
            1,
            [
                chk("DEU/technical", E1, "sent", "eu-q4", deadline_ms=T0 + DAY),
                chk("DEU/technical", E2, "sent", "eu-q4", deadline_ms=T0 + DAY),
                chk("FRA/technical", EF, "sent", "eu-q4", deadline_ms=T0 + DAY),
            ],
        ),
        (
            "eu",
            2,
            [
                chk("DEU/technical", E1, "acknowledged", "eu-q4", response_seconds=60),
                chk("FRA/technical", EF, "acknowledged", "eu-q4", response_seconds=600),
            ],
        ),
        ("eu", 3, [chk("DEU/technical", E2, "bounced", "eu-q4", smtp_code=550)]),
        (
            "osce",
            4,
            [
                chk("DEU/technical", E1, "sent", "osce-q4", deadline_ms=T0 + 9 * DAY),
                chk("DEU/technical", PH, "no_answer"),
            ],
        ),
        ("osce", 5, [chk("DEU/technical", E1, "no_response", "osce-q4"), {"op": "confirm", "key": "DEU/technical"}]),
    ]
    heads: dict[str, tuple[int, str | None]] = {}
    out = []
    for origin, t, ops in steps:
        seq, prev = heads.get(origin, (0, None))
        env = FED.forge(origin, seq=seq + 1, prev=prev, hlc=f"{T0 + t * 1000:013d}-0000", ops=ops)
        heads[origin] = (seq + 1, changeset_id(parse(env, max_bytes=1 << 20).payload))
        out.append(env)
    return out


def store(tmp_path: Path) -> Store:
    s = Store.create(tmp_path / "un.sqlite", node_id="un")
    s.install_manifest(M_ON, now_ms_=T0)
    for env in reversed(history()):  # any order
        s.receive(env, now_ms_=T0 + DAY)
    return s


def test_sqlite_registers_equal_memory_and_campaign_counts(tmp_path: Path) -> None:
    s = store(tmp_path)
    rep = Replica(MemoryState(), M_ON)
    for env in history():
        rep.receive(env, now_ms=T0 + DAY)
    assert s.digest() == rep.state.digest() and s.refused() == []
    counts = s.campaign_counts()
    assert list(counts) == ["eu-q4", "osce-q4"]
    eu = counts["eu-q4"]
    assert eu["origins"] == ["eu"] and eu["channels"] == 3
    assert eu["results"] == {"acknowledged": 2, "bounced": 1}
    assert eu["by_state"] == {"DEU": {"acknowledged": 1, "bounced": 1}, "FRA": {"acknowledged": 1}}
    assert eu["response_seconds"] == [60, 600]
    assert counts["osce-q4"]["results"] == {"no_response": 1}  # another campaign's later result does not touch eu-q4
    # the latest result per channel, and last_verified kept through osce's later negatives
    [f] = s.freshness(key="DEU/technical")
    by = {c["label"]: c for c in f["channels"]}
    assert by["email 1"]["last_result"] == "no_response" and by["email 1"]["last_verified"] == f"{T0 + 2000:013d}-0000"
    assert by["email 2"]["last_result"] == "bounced" and by["email 2"]["last_verified"] is None
    assert by["phone 1"]["last_result"] == "no_answer"
    assert f["last_verified"] == f"{T0 + 2000:013d}-0000" and f["last_confirmed"] == f"{T0 + 5000:013d}-0000"


def test_overdue_counts_per_origin_on_a_given_clock(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert s.overdue_counts(now_ms_=T0 + DAY) == {}
    # DEU is in csirt-net (verify every 2 days), verified at T0+2 s; FRA every 5 days
    assert s.overdue_counts(now_ms_=T0 + 3 * DAY) == {"eu": 1}
    assert s.overdue_counts(now_ms_=T0 + 6 * DAY) == {"eu": 2}
    shown = freshness.by_key(s, now_ms=T0 + 3 * DAY)
    assert shown["DEU/technical"]["overdue"]["reasons"] == ["verify"]
    assert shown["DEU/technical"]["last_verified"] == freshness.iso(T0 + 2000)
    assert [c["channel"] for c in shown["DEU/technical"]["verification"]] == ["email 1", "email 2", "phone 1"]
    assert "@" not in json.dumps(shown["DEU/technical"]["verification"])  # labels, never addresses or hashes
    assert shown["FRA/technical"]["overdue"] is None


def test_the_read_cache_freshness_is_by_key_at_every_clock(tmp_path: Path) -> None:
    """The API's freshness (a snapshot per view digest, the overdue judgement per second; issue 13) is what
    ``by_key`` computes from the store, before, across and after every due time."""
    s = store(tmp_path)
    snap = freshness.snapshot(s)
    for now in (T0, T0 + DAY, T0 + 2 * DAY - 1, T0 + 2 * DAY + 1, T0 + 3 * DAY, T0 + 6 * DAY, T0 + 400 * DAY):
        assert freshness.at(snap, now) == freshness.by_key(s, now_ms=now)
    assert any(f["overdue"] for f in freshness.at(snap, T0 + 6 * DAY).values())


def test_exports_carry_freshness_and_an_import_ignores_it(tmp_path: Path) -> None:
    from pocsync_adapters.csv_table import CsvTableAdapter
    from pocsync_adapters.json_export import JsonExportAdapter

    s = store(tmp_path)
    rows = freshness.annotate(s, s.entries(), now_ms=T0 + 3 * DAY)
    text = exports.to_csv(rows)
    table = {r["key"]: r for r in csv.DictReader(io.StringIO(text))}
    assert table["DEU/technical"]["last_verified"] == freshness.iso(T0 + 2000)
    assert table["FRA/technical"]["last_confirmed"] == ""
    back = [r.raw for r in CsvTableAdapter().read(text.encode(), mapping=CsvTableAdapter.default_mapping, source="x")]
    assert all(not set(raw) & set(exports.FRESHNESS) for raw in back), back
    doc = json.loads(exports.to_json(rows))
    assert doc["entries"][0]["last_confirmed"] == freshness.iso(T0 + 5000)
    back = [
        r.raw for r in JsonExportAdapter().read(exports.to_json(rows), mapping=Mapping(passthrough=True), source="x")
    ]
    assert back == [r["entry"] for r in rows]
    card = exports.to_vcard(rows)
    assert "X-POCSYNC-LAST-VERIFIED:" + freshness.iso(T0 + 2000) in card
    assert [c["entry"] for c in exports.parse_vcards(card)][0].keys() <= {*exports.KNOWN}
