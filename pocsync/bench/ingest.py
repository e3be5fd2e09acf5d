"""Ingest: change-sets received into a real SQLite store, one transaction each (as the daemon does).

Limits measured in the same run on the same envelopes: Ed25519 verifications per second (the floor
of accepting signed change-sets) and SQLite ``executemany`` upserts per second of rows of the same
size (the floor of storing them).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync.bench.history import chain, keys_for
from pocsync.core import envelope
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64, es256_public_jwk, x25519_public_b64
from pocsync.store import Store


def _fresh_store(path: Path, origin_key: Ed25519PrivateKey) -> tuple[Store, mf.Manifest]:
    """A store of node eu with manifest v1 naming ``un`` (scope all, signing with origin_key) and eu."""
    root = Ed25519PrivateKey.generate()
    payload = mf.new_payload([ed25519_public_b64(root)], threshold=1, expires_s=int(time.time()) + 86_400)
    for node, k in (("un", origin_key), ("eu", Ed25519PrivateKey.generate())):
        info = {
            "node": node,
            "organisation": node,
            "signing_key": {"name": "k1", "public": ed25519_public_b64(k)},
            "sealing_key": x25519_public_b64(X25519PrivateKey.generate()),
            "token_key": es256_public_jwk(ec.generate_private_key(ec.SECP256R1()), f"{node}:t1"),
        }
        payload = mf.add_node(
            payload,
            info,
            role="un" if node == "un" else "regional",
            scope=mf.parse_scope("all" if node == "un" else "DEU"),
        )
    m = mf.sign(mf.unsigned(payload), root)
    store = Store.create(path, node_id="eu")
    store.install_manifest(m)
    return store, m


def verify_rate(envs: list[bytes], origin_key: Ed25519PrivateKey) -> float:
    """Ed25519 verifications per second of the envelopes' own signatures (pre-parsed: the bare crypto)."""
    pub = origin_key.public_key()
    parsed = [envelope.parse(e, max_bytes=1 << 20) for e in envs[:2000]]
    msgs = [(p.signatures[0].sig, envelope.pae(p.payload_type, p.payload)) for p in parsed]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        for sig, msg in msgs:
            pub.verify(sig, msg)
        n += len(msgs)
    return n / (time.perf_counter() - t0)


def upsert_rate(path: Path, rows: list[tuple[str, str]]) -> float:
    """Rows per second of one ``executemany`` upsert in one transaction (WAL, synchronous=FULL)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", rows)
        db.execute("COMMIT")
        n += len(rows)
    db.close()
    return n / (time.perf_counter() - t0)


def run(base: Path, *, small: int, large: int, ops: int = 500) -> dict[str, Any]:
    base.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    out: dict[str, Any] = {}

    # 1-op change-sets, one transaction each
    store, m = _fresh_store(base / "one.sqlite", key)
    envs = list(chain(origin="un", key=key, keyid="un:k1", manifest=m.version, count=small, keys=keys_for(500)))
    t0 = time.perf_counter()
    for e in envs:
        o = store.receive(e, source="bench")  # its own transaction, as Runtime.receive (ADR 42: not durable)
        assert o.status == "accepted", (o.status, o.reason, o.message)
    rate = small / (time.perf_counter() - t0)
    store.close()
    limit = verify_rate(envs, key)
    out["ingest_1op"] = {
        "what": "1-op change-sets received, one transaction each (as the daemon)",
        "changesets": small,
        "figure": round(rate, 1),
        "unit": "change-sets/s",
        "limit": round(limit, 1),
        "limit_what": "Ed25519 verify of the same envelopes' size, per s",
        "ratio": round(rate / limit, 4),
        "target": ">= 0.6",
        "higher_is_better": True,
    }

    # 500-op change-sets
    store, m = _fresh_store(base / "many.sqlite", key)
    envs = list(
        chain(origin="un", key=key, keyid="un:k1", manifest=m.version, count=large, keys=keys_for(ops), ops_per_cs=ops)
    )
    t0 = time.perf_counter()
    for e in envs:
        o = store.receive(e, source="bench")  # its own transaction, as Runtime.receive (ADR 42: not durable)
        assert o.status == "accepted", (o.status, o.reason, o.message)
    rate = large * ops / (time.perf_counter() - t0)
    store.close()
    sample = json.loads(envs[0])
    body = json.dumps(sample, separators=(",", ":"))
    row_size = max(1, len(body) // ops)
    rows = [(k, "x" * row_size) for k in keys_for(ops)]
    limit = upsert_rate(base / "upsert.sqlite", rows)
    out["ingest_500op"] = {
        "what": f"{ops}-op change-sets received, one transaction each",
        "changesets": large,
        "ops_per_changeset": ops,
        "figure": round(rate, 1),
        "unit": "ops/s",
        "limit": round(limit, 1),
        "limit_what": f"SQLite executemany upsert of {ops} rows of {row_size} B per transaction, rows/s",
        "ratio": round(rate / limit, 4),
        "target": ">= 0.25",
        "higher_is_better": True,
    }
    return out
