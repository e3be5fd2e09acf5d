"""A signed, encrypted snapshot of the merged view for the day the network is down (issue 16 part 3).

Format (PROTOCOL.md §17.3, ADR 32): an age file (age-encryption.org/v1, to a passphrase or to X25519
recipients) whose plaintext is the canonical JSON **container**

    {"format": "pocsync.snapshot-file/v1", "snapshot": "<DSSE envelope>", "manifests": ["<manifest envelope>", …]}

The snapshot envelope (payloadType ``application/vnd.pocsync.snapshot+json``) is signed by the node's
current signing key (as a peer request is, §13.2) over the payload

    {"type": "pocsync.snapshot/v1", "node", "taken_at", "taken_ms", "manifest", "manifest_id", "digest",
     "heads", "entries": [...], "records": [...]}

and ``manifests`` is the node's manifest chain (every installed version).  :func:`verify` anchors the
chain at a root public key given by the reader (never at the roots the file names), follows it by the
install rules of §6, checks the snapshot's signature against the last version, and recomputes the
view digest from the entries and records.

:func:`render_html` (:mod:`pocsync.directory.snapshot_page`) writes a self-contained printable page (no script, no outside asset; every field
escaped, bidirectional and control characters removed).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pyrage

from pocsync.core import envelope as dsse
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_from_b64, root_keyid
from pocsync.core.merge import view_digest
from pocsync.directory.snapshot_page import _utc
from pocsync.directory.snapshot_page import age_words as age_words  # re-exported: snap.age_words and so on
from pocsync.directory.snapshot_page import clean_text as clean_text
from pocsync.directory.snapshot_page import render_html as render_html
from pocsync.errors import KeyFileError, PocsyncError, SignatureError
from pocsync.store import queries

SNAPSHOT_TYPE = "application/vnd.pocsync.snapshot+json"
SNAPSHOT_PAYLOAD = "pocsync.snapshot/v1"
CONTAINER_FORMAT = "pocsync.snapshot-file/v1"
MAX_FILE_BYTES = 64 << 20  # an encrypted snapshot file, read before decryption
MAX_PLAIN_BYTES = 64 << 20
PASSPHRASE_BITS = 160  # a generated passphrase: 32 base32 characters (5 bits each)
MIN_PASSPHRASE_CHARS = 20  # a passphrase a person chose (the API refuses shorter ones)
BASE32 = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols, no 0/O, 1/I


class SnapshotError(PocsyncError):
    """A snapshot that cannot be opened or does not verify."""


def generate_passphrase() -> str:
    """160 random bits as 32 characters in groups of four (``ABCD-EFGH-…``), easy to copy by hand."""
    chars = "".join(secrets.choice(BASE32) for _ in range(PASSPHRASE_BITS // 5))
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


# --- creating ----------------------------------------------------------------------------------------
def current_key_name(m: mf.Manifest, node_id: str) -> str:
    """The node's current signing key (no ``until_seq``; the node not removed), as for peer requests."""
    node = m.nodes.get(node_id)
    if node is None or node.removed:
        raise SnapshotError(f"{node_id} is not a current member of manifest v{m.version}", reason="not_a_member")
    keys = [k for k in node.signing_keys if k.until_seq is None]
    if not keys:
        raise SnapshotError(f"manifest v{m.version} lists no current signing key of {node_id}", reason="no_key")
    return max(keys, key=lambda k: k.from_seq).name


def payload_of(store: Any, *, now_ms: int | None = None) -> dict[str, Any]:
    """What a snapshot holds, read from a store in one transaction."""
    t = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    with store.transaction():
        m = store.require_manifest()
        entries = [
            {
                "key": r["key"],
                "entry": r["entry"],
                "origin": r["origin"],
                "cs_id": r["cs_id"],
                "index": r["index"],
                "hlc": r["hlc"],
                "author": r["author"],
            }
            for r in store.entries()
        ]
        records = [
            {
                "namespace": r["ns"],
                "key": r["key"],
                "op": r["op"],
                "origin": r["origin"],
                "cs_id": r["cs_id"],
                "index": r["idx"],
                "hlc": r["hlc"],
                "author": r["author"],
                "record": jsonc.loads(r["entry"]),
            }
            for r in queries.records(store.conn)
        ]
        # the held-change lines of the digest (PROTOCOL.md §16.5): without them a snapshot taken while a
        # contact change is held would not give its own digest
        held = sorted(
            [str(x[0]), str(x[1]), str(x[2])] for lines in queries.held_lines(store.conn) for x in json.loads(lines)
        )
        heads = {o: {"seq": h.seq, "id": h.id} for o, h in sorted(store.heads().items())}
        digest = store.digest()
        chain = [store.manifest_bytes(v) for v in store.manifest_versions()]
        node = store.node_id
    return {
        "payload": {
            "type": SNAPSHOT_PAYLOAD,
            "node": node,
            "taken_at": _utc(t),
            "taken_ms": t,
            "manifest": m.version,
            "manifest_id": m.id,
            "digest": digest,
            "heads": heads,
            "entries": entries,
            "records": records,
            "held": held,
        },
        "manifest": m,
        "chain": chain,
    }


def build(store: Any, nd: Any, *, now_ms: int | None = None) -> bytes:
    """The signed container (plaintext) of a snapshot of ``store``, signed with ``nd``'s current key."""
    got = payload_of(store, now_ms=now_ms)
    m, me = got["manifest"], got["payload"]["node"]
    name = current_key_name(m, me)
    try:
        key = nd.signing_key(name)
    except KeyFileError as exc:
        raise SnapshotError(f"cannot sign the snapshot with {me}:{name}: {exc.message}", reason=exc.reason) from None
    env = dsse.sign(SNAPSHOT_TYPE, jsonc.dumps(got["payload"]), f"{me}:{name}", key)
    return jsonc.dumps(
        {
            "format": CONTAINER_FORMAT,
            "snapshot": env.to_bytes().decode(),
            "manifests": [c.decode() for c in got["chain"]],
        }
    )


# --- encryption (age) ----------------------------------------------------------------------------------
def encrypt(plain: bytes, *, passphrase: bytes | None = None, recipients: list[str] | tuple[str, ...] = ()) -> bytes:
    if (passphrase is None) == (not recipients):
        raise SnapshotError("give a passphrase or recipients (not both)", reason="usage")
    if passphrase is not None:
        try:
            sealed: bytes = pyrage.passphrase.encrypt(plain, passphrase.decode("utf-8"))
            return sealed
        except UnicodeDecodeError:
            raise SnapshotError("the passphrase is not UTF-8 text", reason="bad_passphrase") from None
    keys = []
    for r in recipients:
        try:
            keys.append(pyrage.x25519.Recipient.from_str(r.strip()))
        except Exception:
            raise SnapshotError(f"{r[:80]!r} is not an age public key (age1…)", reason="bad_recipient") from None
    sealed_to: bytes = pyrage.encrypt(plain, keys)
    return sealed_to


def read_identities(text: str) -> list[Any]:
    """age identities (``AGE-SECRET-KEY-1…`` lines; ``#`` comments and blank lines skipped)."""
    ids = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            ids.append(pyrage.x25519.Identity.from_str(line))
        except Exception:
            raise SnapshotError(
                "the identity file holds a line that is not an age secret key (AGE-SECRET-KEY-1…)",
                reason="bad_identity",
            ) from None
    if not ids:
        raise SnapshotError("the identity file holds no age secret key", reason="bad_identity")
    return ids


def decrypt(blob: bytes, *, passphrase: bytes | None = None, identities: list[Any] | None = None) -> bytes:
    if len(blob) > MAX_FILE_BYTES:
        raise SnapshotError(f"the file is larger than {MAX_FILE_BYTES >> 20} MiB", reason="oversize")
    if not blob.startswith(b"age-encryption.org/v1\n") and not blob.startswith(b"-----BEGIN AGE ENCRYPTED FILE"):
        raise SnapshotError("not an age-encrypted snapshot file", reason="not_a_snapshot")
    try:
        plain: bytes
        if passphrase is not None:
            plain = pyrage.passphrase.decrypt(blob, passphrase.decode("utf-8", "replace"))
        else:
            plain = pyrage.decrypt(blob, identities or [])
    except Exception as exc:
        what = "passphrase" if passphrase is not None else "identity"
        raise SnapshotError(
            f"cannot decrypt the snapshot: wrong {what}, or the file was changed ({exc})", reason="decrypt_failed"
        ) from None
    if len(plain) > MAX_PLAIN_BYTES:
        raise SnapshotError("the decrypted snapshot is too large", reason="oversize")
    return plain


#: How far ahead of the reader's clock a snapshot's ``taken_ms`` may be (the peers' clock-skew bound, §8).
MAX_FUTURE_MS = 300_000


# --- verifying -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verified:
    payload: dict[str, Any]
    manifest_version: int
    manifest_expires: int
    keyid: str
    anchor_version: int

    @property
    def age_seconds(self) -> float:
        return time.time() - float(self.payload["taken_ms"]) / 1000


def open_container(plain: bytes) -> tuple[dsse.Envelope, list[mf.Manifest]]:
    try:
        obj = jsonc.loads(plain)
    except PocsyncError as exc:
        raise SnapshotError(f"the snapshot is not strict JSON: {exc.message}", reason="bad_snapshot") from None
    if (
        not isinstance(obj, dict)
        or obj.get("format") != CONTAINER_FORMAT
        or set(obj) != {"format", "snapshot", "manifests"}
    ):
        raise SnapshotError(f"not a {CONTAINER_FORMAT} container", reason="bad_snapshot")
    if (
        not isinstance(obj["snapshot"], str)
        or not isinstance(obj["manifests"], list)
        or not obj["manifests"]
        or not all(isinstance(x, str) for x in obj["manifests"])
    ):
        raise SnapshotError(
            "snapshot must be an envelope and manifests a non-empty list of envelopes", reason="bad_snapshot"
        )
    env = dsse.parse(obj["snapshot"].encode(), max_bytes=MAX_PLAIN_BYTES, payload_type=SNAPSHOT_TYPE)
    return env, [mf.parse(x.encode()) for x in obj["manifests"]]


def verify_chain(chain: list[mf.Manifest], root_pub_b64: str) -> tuple[mf.Manifest, int]:
    """(the last manifest, the anchor's version): the chain anchored at ``root_pub_b64``, then followed by
    the install rules of §6 (each next version signed by a threshold of the previous roots and its own)."""
    try:
        root = ed25519_public_from_b64(root_pub_b64.strip())
    except PocsyncError:
        raise SnapshotError(
            "the root public key is not standard base64 of 32 bytes (root.pub)", reason="bad_root_key"
        ) from None
    kid = root_keyid(root_pub_b64.strip())
    chain = sorted(chain, key=lambda m: m.version)
    anchor = next((i for i, m in enumerate(chain) if kid in m.roots and kid in mf.signed_by(m, {kid: root})), None)
    if anchor is None:
        raise SnapshotError(
            f"no manifest in the file is signed by the root key {kid}: the snapshot is not of this federation",
            reason="untrusted_chain",
        )
    mf.check_self_signed(chain[anchor])
    prev = chain[anchor]
    for m in chain[anchor + 1 :]:
        if m.version != prev.version + 1:
            raise SnapshotError(f"the manifest chain skips from v{prev.version} to v{m.version}", reason="manifest_gap")
        if len(mf.signed_by(m, prev.roots)) < prev.threshold:
            raise SnapshotError(
                f"manifest v{m.version} lacks {prev.threshold} signature(s) by the roots of v{prev.version}",
                reason="threshold_not_met",
            )
        mf.check_self_signed(m)
        prev = m
    return prev, chain[anchor].version


def digest_of(payload: dict[str, Any]) -> str:
    """The view digest (§9) recomputed from a snapshot's entries and records."""
    held = payload.get("held", [])  # absent in snapshots of software without held changes: none
    if not isinstance(held, list) or not all(
        isinstance(x, list) and len(x) == 3 and all(isinstance(y, str) for y in x) for x in held
    ):
        raise TypeError("held must be a list of [namespace, key, ref] lines")
    return view_digest(
        [("entry", e["key"], f"{e['cs_id']}#{e['index']}") for e in payload["entries"]]
        + [(r["namespace"], r["key"], f"{r['cs_id']}#{r['index']}") for r in payload["records"]]
        + [(x[0], x[1], x[2]) for x in held]
    )


def verify(plain: bytes, root_pub_b64: str) -> Verified:
    """Verify a decrypted container against the federation's root key (offline); raise SnapshotError."""
    env, chain = open_container(plain)
    last, anchor = verify_chain(chain, root_pub_b64)

    def lookup(keyid: str) -> Any:
        node_id, _, name = keyid.partition(":")
        node = last.nodes.get(node_id)
        if node is None or node.removed:
            return None
        k = node.key_named(name)
        return k.public if k is not None and k.until_seq is None else None

    try:
        keyid = dsse.verify_one(env, lookup)
    except SignatureError as exc:
        raise SnapshotError(
            f"the snapshot's signature does not verify against manifest v{last.version}: {exc.message}",
            reason=exc.reason,
        ) from None
    try:
        p = jsonc.loads(env.payload)
    except PocsyncError as exc:
        raise SnapshotError(f"snapshot payload: {exc.message}", reason="bad_snapshot") from None
    if not isinstance(p, dict) or p.get("type") != SNAPSHOT_PAYLOAD:
        raise SnapshotError(f"the payload type is not {SNAPSHOT_PAYLOAD}", reason="bad_snapshot")
    if p.get("node") != keyid.partition(":")[0]:
        raise SnapshotError("the snapshot names another node than its signer", reason="key_not_of_origin")
    if p.get("manifest") != last.version or p.get("manifest_id") != last.id:
        raise SnapshotError(
            f"the snapshot was taken under manifest v{p.get('manifest')}, the file's chain ends at v{last.version}",
            reason="manifest_mismatch",
        )
    if (
        not isinstance(p.get("taken_ms"), int)
        or isinstance(p["taken_ms"], bool)
        or p["taken_ms"] < 0
        or p["taken_ms"] // 1000 >= last.expires
    ):
        raise SnapshotError("the snapshot was taken after its manifest expired", reason="manifest_expired")
    if p.get("taken_at") != _utc(p["taken_ms"]):  # the page prints taken_at; the age comes from taken_ms
        raise SnapshotError(f"the snapshot's taken_at {p.get('taken_at')!r} is not its taken_ms", reason="bad_snapshot")
    if p["taken_ms"] > time.time() * 1000 + MAX_FUTURE_MS:  # it would read as just taken until then
        raise SnapshotError(
            f"the snapshot claims to be taken at {p.get('taken_at')!r}, more than "
            f"{MAX_FUTURE_MS // 1000} s ahead of this clock",
            reason="from_the_future",
        )
    try:
        ok = digest_of(p) == p.get("digest")
    except (KeyError, TypeError):
        raise SnapshotError("the snapshot's entries or records are malformed", reason="bad_snapshot") from None
    if not ok:
        raise SnapshotError("the entries and records do not give the snapshot's digest", reason="digest_mismatch")
    return Verified(p, last.version, last.expires, keyid, anchor)
