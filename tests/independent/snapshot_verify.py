"""An independent verifier of a decrypted crisis snapshot (PROTOCOL.md §17.3 steps 2-7) — written from the
document, NOT from pocsync.  Imports nothing from pocsync (the standard library, `cryptography`'s Ed25519 and
the other independent readings in tests/independent/).  Decrypt the file first with any age implementation."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from tests.independent import protocol as p
from tests.independent.bundle_verify import BundleError, verify_chain

SNAPSHOT_TYPE = "application/vnd.pocsync.snapshot+json"


def _utc(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, from unix ms (integer arithmetic)."""
    import datetime

    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def verify_snapshot(plain: bytes, root_pub_b64: str) -> dict[str, Any]:
    c = p.strict_json(plain)  # step 2
    if (
        not isinstance(c, dict)
        or set(c) != {"format", "snapshot", "manifests"}
        or c["format"] != "pocsync.snapshot-file/v1"
    ):
        raise BundleError("not a snapshot container")
    last = verify_chain([m.encode() for m in c["manifests"]], root_pub_b64)  # step 3
    payload, sigs = p.envelope(c["snapshot"].encode(), SNAPSHOT_TYPE)  # step 4
    if len(sigs) != 1:
        raise BundleError("exactly one signature")
    keyid, sig = sigs[0]
    node_id, _, name = keyid.partition(":")
    node = last.nodes.get(node_id)
    key = None
    if node is not None and node.removed_at_seq is None:
        key = next(
            (base64.b64decode(k["public"]) for k in node.keys if k["name"] == name and k["until_seq"] is None), None
        )
    if key is None or not p.ed_ok(key, sig, SNAPSHOT_TYPE, payload):
        raise BundleError("the snapshot's signature does not verify")
    s = p.strict_json(payload)  # step 5
    if s.get("type") != "pocsync.snapshot/v1" or s.get("node") != node_id:
        raise BundleError("wrong type or node")
    if s.get("manifest") != last.version or s.get("manifest_id") != last.id:
        raise BundleError("taken under another manifest than the chain's last")
    if s["taken_ms"] // 1000 >= last.expires:
        raise BundleError("taken after the manifest expired")
    if s.get("taken_at") != _utc(s["taken_ms"]):
        raise BundleError("taken_at is not taken_ms")
    if s["taken_ms"] > time.time() * 1000 + 300_000:  # step 7: more than 300 s ahead of this clock
        raise BundleError("taken in the future")
    lines = sorted(
        [f"entry {e['key']} {e['cs_id']}#{e['index']}\n" for e in s["entries"]]  # step 6
        + [f"{r['namespace']} {r['key']} {r['cs_id']}#{r['index']}\n" for r in s["records"]]
        + [f"{ns} {key} {ref}\n" for ns, key, ref in s.get("held", [])]
    )
    if "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest() != s["digest"]:
        raise BundleError("the digest does not match the entries and records")
    return {
        "node": node_id,
        "taken_ms": s["taken_ms"],
        "digest": s["digest"],
        "entries": len(s["entries"]),
        "manifest": last.version,
    }
