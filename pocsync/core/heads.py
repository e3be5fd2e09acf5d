"""Head vectors (PROTOCOL.md §10): what a node holds, signed, so peers spot gaps and forks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pocsync.core import envelope as dsse
from pocsync.core import jsonc
from pocsync.core.hlc import is_hlc
from pocsync.core.manifest import Manifest
from pocsync.errors import ProtocolError, SignatureError

HEADS_PAYLOAD = "pocsync.heads/v1"


@dataclass(frozen=True)
class HeadVector:
    node: str
    hlc: str
    manifest: int
    heads: dict[str, tuple[int, str]]
    digest: str
    refused: int
    quarantined: int
    equivocations: tuple[tuple[str, int], ...]

    def payload(self) -> bytes:
        return jsonc.dumps(
            {
                "type": HEADS_PAYLOAD,
                "node": self.node,
                "hlc": self.hlc,
                "manifest": self.manifest,
                "heads": {o: {"seq": s, "id": i} for o, (s, i) in sorted(self.heads.items())},
                "digest": self.digest,
                "refused": self.refused,
                "quarantined": self.quarantined,
                "equivocations": [{"origin": o, "seq": s} for o, s in sorted(self.equivocations)],
            }
        )

    def sign(self, *, keyid: str, key: Ed25519PrivateKey) -> bytes:
        return dsse.sign(dsse.HEADS_TYPE, self.payload(), keyid, key).to_bytes()


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ProtocolError(f"head vector {what} must be an integer ≥ 0", reason="bad_heads")
    return v


def verify(data: bytes, manifest: Manifest, *, max_bytes: int = 1 << 20) -> HeadVector:
    """Verify a signed head vector: one signature by a current key of the announcing node.

    Total: any bytes give a HeadVector or a ProtocolError."""
    try:
        return _verify(data, manifest, max_bytes=max_bytes)
    except ProtocolError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise ProtocolError(f"head vector is malformed ({type(exc).__name__})", reason="bad_heads") from None


def _verify(data: bytes, manifest: Manifest, *, max_bytes: int) -> HeadVector:
    env = dsse.parse(data, max_bytes=max_bytes, payload_type=dsse.HEADS_TYPE)

    def lookup(keyid: str) -> Ed25519PublicKey | None:  # a node's newest key that is still open-ended
        node_id, _, name = keyid.partition(":")
        node = manifest.node(node_id)
        k = node.key_named(name) if node and not node.removed else None
        return k.public if k is not None and k.until_seq is None else None

    keyid = dsse.verify_one(env, lookup)
    obj = jsonc.loads(env.payload)
    if not isinstance(obj, dict) or obj.get("type") != HEADS_PAYLOAD:
        raise ProtocolError("not a head vector", reason="bad_heads")
    if obj.get("node") != keyid.partition(":")[0]:
        raise SignatureError("head vector signed by another node's key", reason="key_not_of_origin")
    heads_raw = obj.get("heads")
    if not isinstance(heads_raw, dict) or not is_hlc(obj.get("hlc")) or not isinstance(obj.get("digest"), str):
        raise ProtocolError("head vector is missing heads, hlc or digest", reason="bad_heads")
    heads = {}
    for origin, h in heads_raw.items():
        if not isinstance(h, dict) or not isinstance(h.get("id"), str):
            raise ProtocolError(f"head of {origin} must be {{seq, id}}", reason="bad_heads")
        heads[origin] = (_int(h.get("seq"), f"heads.{origin}.seq"), h["id"])
    eq = obj.get("equivocations") or []
    if not isinstance(eq, list) or not all(isinstance(e, dict) for e in eq):
        raise ProtocolError("equivocations must be a list of {origin, seq}", reason="bad_heads")
    return HeadVector(
        node=obj["node"],
        hlc=obj["hlc"],
        manifest=_int(obj.get("manifest"), "manifest"),
        heads=heads,
        digest=obj["digest"],
        refused=_int(obj.get("refused", 0), "refused"),
        quarantined=_int(obj.get("quarantined", 0), "quarantined"),
        equivocations=tuple((str(e.get("origin")), _int(e.get("seq"), "equivocation seq")) for e in eq),
    )


def of_members(heads: dict[str, tuple[int, str]], members: Iterable[str]) -> dict[str, tuple[int, str]]:
    """The heads of origins the manifest names: only a member's chain can be fetched, and a head vector
    naming other origins (up to 1 MiB of them) proves nothing about them."""
    names = set(members)
    return {o: h for o, h in heads.items() if o in names}


def compare(mine: dict[str, tuple[int, str]], theirs: dict[str, tuple[int, str]]) -> dict[str, str]:
    """Per origin: 'behind' (they have more), 'ahead', 'fork' (same seq, other id) or 'equal'."""
    out = {}
    for origin in sorted(set(mine) | set(theirs)):
        a, b = mine.get(origin, (0, "")), theirs.get(origin, (0, ""))
        if a[0] < b[0]:
            out[origin] = "behind"
        elif a[0] > b[0]:
            out[origin] = "ahead"
        else:
            out[origin] = "equal" if a[1] == b[1] else "fork"
    return out
