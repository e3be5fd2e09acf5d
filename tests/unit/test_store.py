"""The SQLite store runs the same rules as the in-memory state, durably."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from pocsync.core import manifest as mf
from pocsync.core.merge import view_digest
from pocsync.errors import SigningRefused, StoreError
from pocsync.store import Store
from pocsync.store.schema import SCHEMA_VERSION
from tests.support.fed import T0, Fed, digest, edit, put


def make_store(tmp_path: Path, fed: Fed, node: str) -> Store:
    s = Store.create(tmp_path / f"{node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    return s


def sedit(store: Store, fed: Fed, ops: list[dict], t: int = T0, name: str = "k1"):
    return store.edit(ops, key=fed.key(store.node_id, name), author=f"staff@{store.node_id}", now_ms_=t)


@pytest.fixture()
def fed() -> Fed:
    return Fed()


def test_store_matches_memory_replica(tmp_path: Path, fed: Fed) -> None:
    eu, osce = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "osce")
    sedit(eu, fed, [put("DEU/diplomatic"), put("FRA/technical")])
    sedit(osce, fed, [put("DEU/diplomatic", position="osce")], t=T0 + 5)
    sedit(eu, fed, [{"op": "delete", "key": "FRA/technical"}], t=T0 + 9)
    mem = fed.replica()
    for store in (eu, osce):
        for env in store.export():
            mem.receive(env, now_ms=T0 + 10)
    for a, b in ((eu, osce), (osce, eu)):
        for env in a.export():
            b.receive(env, now_ms_=T0 + 10)
    assert eu.digest() == osce.digest() == digest(mem)
    assert {r["key"] for r in eu.entries()} == {"DEU/diplomatic"}
    prov = eu.entry("DEU/diplomatic")
    assert prov["origin"] == "osce" and {v["origin"] for v in prov["versions"]} == {"eu", "osce"}


def test_store_persists_across_reopen_and_verifies(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed, "eu")
    sedit(eu, fed, [put("DEU/technical")])
    sedit(eu, fed, [put("ITA/technical")], t=T0 + 1)
    d = eu.digest()
    eu.close()
    again = Store.open(tmp_path / "eu.sqlite")
    assert again.digest() == d and again.heads()["eu"].seq == 2
    n, problems = again.verify_log()
    assert (n, problems) == (2, [])
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_log_verify_detects_tampered_rows(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed, "eu")
    sedit(eu, fed, [put("DEU/technical")])
    sedit(eu, fed, [put("ITA/technical")], t=T0 + 1)
    assert eu.verify_log()[1] == []
    raw = eu.conn.execute("SELECT envelope FROM log WHERE seq=2").fetchone()[0]
    eu.conn.execute("UPDATE log SET envelope=? WHERE seq=2", (bytes(raw).replace(b'"sig":"', b'"sig":"AAAA'),))
    eu.conn.execute("DELETE FROM log WHERE seq=1")
    problems = eu.verify_log()[1]
    assert {p.seq for p in problems} == {2}


def test_manifest_install_rederives_and_counts(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed, "eu")
    for i, k in enumerate(["DEU/technical", "FRA/technical", "ITA/technical"]):
        sedit(eu, fed, [put(k)], t=T0 + i)
    pub = fed.new_key("eu", "k2")
    m2 = fed.signed(mf.rotate_key(mf.next_version(fed.manifest.payload), "eu", name="k2", public=pub, from_seq=3))
    eu.install_manifest(m2, now_ms_=T0 + 10)
    assert {r["key"] for r in eu.entries()} == {"DEU/technical", "FRA/technical"}
    assert [q["reason"] for q in eu.quarantined()] == ["key_out_of_range"]
    assert eu.manifest_versions() == [1, 2]
    # the node now signs seq 3 with its new key, and the log keeps its received times
    out = sedit(eu, fed, [put("ITA/technical", position="re-signed")], t=T0 + 20, name="k2")
    assert out.seq == 3
    with pytest.raises(mf.ManifestRollbackError):
        eu.install_manifest(fed.manifest, now_ms_=T0 + 30)


def test_two_stores_on_different_branches_converge_with_the_proof(tmp_path: Path, fed: Fed) -> None:
    a, b = make_store(tmp_path / "a", fed, "un"), make_store(tmp_path / "b", fed, "osce")
    src = fed.replica()
    first = edit(src, fed, "eu", [put("DEU/technical")])
    e1 = src.state.all_log()[0]
    fork_a = fed.forge("eu", seq=2, prev=first.cs_id, hlc="1763800000010-0000", ops=[put("FRA/technical")])
    fork_b = fed.forge("eu", seq=2, prev=first.cs_id, hlc="1763800000010-0000", ops=[put("ITA/technical")])
    for s, f in ((a, fork_a), (b, fork_b)):
        s.receive(e1, now_ms_=T0)
        assert s.receive(f, now_ms_=T0).status == "accepted"
    assert a.digest() != b.digest()
    assert a.receive(fork_b, now_ms_=T0).status == "equivocation"
    assert b.receive(fork_a, now_ms_=T0).status == "equivocation"
    assert a.digest() == b.digest()
    assert {r["key"] for r in a.entries()} == {"DEU/technical"}
    assert len(a.proofs()) == 1 and a.proofs()[0]["origin"] == "eu"


def test_concurrent_writers_never_reuse_a_seq(tmp_path: Path, fed: Fed) -> None:
    path = tmp_path / "eu.sqlite"
    make_store(tmp_path, fed, "eu").close()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Store.open(path) as s:
                for i in range(15):
                    sedit(s, fed, [put("DEU/technical", notes=f"writer {n} edit {i}")], t=T0 + i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(path) as s:
        assert s.heads()["eu"].seq == 45
        assert s.verify_log() == (45, [])


def test_store_that_lacks_its_own_history_refuses_to_sign(tmp_path: Path, fed: Fed) -> None:
    old = make_store(tmp_path / "old", fed, "eu")
    sedit(old, fed, [put("DEU/technical")])
    sedit(old, fed, [put("FRA/technical")], t=T0 + 1)
    history = list(old.export())
    fresh = make_store(tmp_path / "fresh", fed, "eu")  # the node's store was lost and re-created
    assert fresh.receive(history[1], now_ms_=T0 + 2).reason == "gap"  # peers announce eu seq 2
    with pytest.raises(SigningRefused):
        sedit(fresh, fed, [put("ITA/technical")], t=T0 + 3)
    fresh.receive(history[0], now_ms_=T0 + 2)  # recovered from peers
    assert sedit(fresh, fed, [put("ITA/technical")], t=T0 + 3).seq == 3


def test_schema_version_and_refusal_of_newer_schema(tmp_path: Path, fed: Fed) -> None:
    s = make_store(tmp_path, fed, "eu")
    assert s.get_meta("schema_version") == str(SCHEMA_VERSION)
    with s.transaction():
        s.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    s.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(tmp_path / "eu.sqlite")


def test_store_file_is_private(tmp_path: Path, fed: Fed) -> None:
    make_store(tmp_path, fed, "eu")
    assert (tmp_path / "eu.sqlite").stat().st_mode & 0o077 == 0
    with pytest.raises(StoreError):
        Store.create(tmp_path / "eu.sqlite", node_id="eu")


def test_view_digest_is_a_function_of_the_view_table(tmp_path: Path, fed: Fed) -> None:
    s = make_store(tmp_path, fed, "eu")
    sedit(s, fed, [put("DEU/technical"), put("FRA/diplomatic")])
    rows = s.conn.execute("SELECT key, cs_id, idx FROM view").fetchall()
    assert s.digest() == view_digest(("entry", r[0], f"{r[1]}#{r[2]}") for r in rows)
    assert isinstance(s.conn, sqlite3.Connection)


def test_store_holds_chain_refused_change_sets_like_memory(tmp_path: Path) -> None:
    """PROTOCOL.md §8 step 6: a verified change-set refused by the chain checks is held whole, so that a second one
    at its (origin, seq) is a proof; the store finds the proofs and view the memory replica finds, in several
    orders, and keeps what it holds across a re-derivation (reset) and a reopen."""
    import json
    import random

    from pocsync.core.replica import MemoryState, Replica

    v = json.loads((Path(__file__).parents[1] / "vectors" / "equivocation_held.json").read_text())
    m = mf.parse(v["manifests"][0].encode())
    envs = [c["envelope"].encode() for c in v["changesets"]]
    rnd = random.Random(7)
    for n in range(4):
        order = envs if n == 0 else rnd.sample(envs, k=len(envs))
        mem = Replica(MemoryState(), m)
        store = Store.create(tmp_path / f"un{n}.sqlite", node_id="un")
        store.install_manifest(m, now_ms_=v["now_ms"])
        for env in order:
            mem.receive(env, now_ms=v["now_ms"])
            store.receive(env, now_ms_=v["now_ms"])
        assert sorted([p["origin"], p["seq"]] for p in store.proofs()) == v["expect"]["proofs"]
        assert sorted([p.origin, p.seq] for p in mem.state.proofs()) == v["expect"]["proofs"]
        assert store.digest() == mem.state.digest() == v["expect"]["digest"]
        held = {(r["origin"], r["seq"]) for r in store.conn.execute("SELECT origin, seq FROM chain_evidence")}
        assert held == {(o, s) for o, s, _ in mem.state.evidence.values()}
        store.close()
    # held across reset (a re-derivation) and a reopen: 3a alone is held, 3b then makes the proof
    first = [envs[i] for i in (0, 1, 3, 2)]  # eu#1, eu#2b, eu#3a (prev_mismatch: held), eu#2a (a proof: reset)
    store = Store.create(tmp_path / "again.sqlite", node_id="un")
    store.install_manifest(m, now_ms_=v["now_ms"])
    for env in first:
        store.receive(env, now_ms_=v["now_ms"])
    assert store.conn.execute("SELECT count(*) FROM chain_evidence").fetchone()[0] == 1
    store.close()
    store = Store.open(tmp_path / "again.sqlite")
    assert store.receive(envs[4], now_ms_=v["now_ms"]).status == "equivocation"
    assert sorted([p["origin"], p["seq"]] for p in store.proofs()) == [["eu", 2], ["eu", 3]]
    store.close()
