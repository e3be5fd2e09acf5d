"""Change-sets: the signed unit of the log (PROTOCOL.md §7).

Building, signing and the strict structural parse of a payload.  Their verification on receipt is
PROTOCOL.md §8, in :mod:`pocsync.core.acceptance` (one function per step).  The payload is parsed
only after its signature verified, except for the untrusted peeks that PROTOCOL.md §8 step 4 names:
``origin`` and ``seq`` (:func:`peek_identity`, for the duplicate check and for parking) and, when
verification fails, ``manifest`` (to park a change-set signed under a newer manifest).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import envelope as dsse
from pocsync.core import jsonc, model
from pocsync.core.hlc import is_hlc
from pocsync.core.manifest import NODE_ID_RE, Manifest
from pocsync.errors import ChangeSetError, PocsyncError

CHANGESET_PAYLOAD = "pocsync.changeset/v1"
OPS = ("put", "delete", "withdraw")  # the base op kinds; every kind: pocsync.core.opkinds.KINDS
ID_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
MAX_OPS = 1000
MAX_AUTHOR = 200


def changeset_id(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Op:
    index: int
    op: str
    key: str
    entry: dict[str, Any] | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class ChangeSet:
    id: str
    origin: str
    seq: int
    prev: str | None
    hlc: str
    manifest: int
    author: str
    ops: tuple[Op, ...]
    keyid: str
    envelope: bytes  # verbatim, as received or as signed


def build_payload(
    *, origin: str, seq: int, prev: str | None, hlc: str, manifest: int, author: str, ops: list[dict[str, Any]]
) -> bytes:
    payload = {
        "type": CHANGESET_PAYLOAD,
        "origin": origin,
        "seq": seq,
        "prev": prev,
        "hlc": hlc,
        "manifest": manifest,
        "author": author,
        "ops": ops,
    }
    data = jsonc.dumps(payload)
    parse_payload(data)  # never sign what we would not accept
    return data


def sign(payload: bytes, *, keyid: str, key: Ed25519PrivateKey) -> bytes:
    return dsse.sign(dsse.CHANGESET_TYPE, payload, keyid, key).to_bytes()


def parse_payload(payload: bytes, *, parsed: Any = None) -> dict[str, Any]:
    """Strict parse and structural check of a change-set payload (``parsed``: the strict parse of these
    very bytes, already done by :func:`peek_identity`)."""
    obj = jsonc.loads(payload) if parsed is None else parsed
    if not isinstance(obj, dict):
        raise ChangeSetError("change-set payload must be a JSON object")
    if obj.get("type") != CHANGESET_PAYLOAD:
        raise ChangeSetError(f"payload type must be {CHANGESET_PAYLOAD!r}", reason="wrong_type")
    origin = obj.get("origin")
    if not isinstance(origin, str) or not NODE_ID_RE.match(origin):
        raise ChangeSetError("origin must be a node id", field="origin")
    for name in ("seq", "manifest"):
        v = obj.get(name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ChangeSetError(f"{name} must be an integer ≥ 1", field=name)
    prev = obj.get("prev")
    if "prev" not in obj or prev is not None and not (isinstance(prev, str) and ID_RE.match(prev)):
        raise ChangeSetError("prev must be null or sha256:<64 hex>", field="prev")
    if not is_hlc(obj.get("hlc")):
        raise ChangeSetError("hlc must be '<13 digits>-<4 digits>'", field="hlc")
    author = obj.get("author")
    if not isinstance(author, str) or model.blank(author) or len(author) > MAX_AUTHOR:
        raise ChangeSetError(f"author must be a non-empty string of at most {MAX_AUTHOR} characters", field="author")
    ops = obj.get("ops")
    if not isinstance(ops, list) or not ops:
        raise ChangeSetError("ops must be a non-empty list", field="ops")
    if len(ops) > MAX_OPS:
        raise ChangeSetError(f"{len(ops)} ops exceed the cap of {MAX_OPS}", reason="too_many_ops", field="ops")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("key"), str):
            raise ChangeSetError(f"ops[{i}] must be an object with string 'op' and 'key'", field=f"ops[{i}]")
    return obj


def verify(data: bytes, manifest: Manifest, *, max_bytes: int) -> ChangeSet:
    """Verify a change-set envelope against ``manifest`` by PROTOCOL.md §8 steps 1, 2, 4 and 5 (the ones
    that need no local state); raise a typed error or :class:`~pocsync.errors.Parked` (total).  The steps
    themselves are in :mod:`pocsync.core.acceptance`."""
    from pocsync.core import acceptance  # acceptance builds on this module
    from pocsync.core.outcome import Limits

    return acceptance.verify(data, manifest, Limits(max_envelope_bytes=max_bytes))


# Parse once (issue 13): the strict parse that peek_identity makes of an envelope and its payload is kept
# for the verify of the *same bytes object* that usually follows, so each change-set is parsed once.  The
# payload is still used only after its signature verified (PROTOCOL.md §8): only the parse is shared, and
# the kept objects are handed out once, in the same thread (never to two consumers).  No I/O, same results.
_local = threading.local()


def _take_peeked(data: bytes, max_bytes: int) -> tuple[Any, Any] | None:
    p = getattr(_local, "peeked", None)
    if p is None or p[0] is not data or p[1] != max_bytes:
        return None
    _local.peeked = None
    return p[2], p[3]


def peek_identity(data: bytes, *, max_bytes: int) -> tuple[str, str | None, int | None]:
    """(id, origin, seq) of an envelope without trusting it — for duplicate checks and parking."""
    env = dsse.parse(data, max_bytes=max_bytes, payload_type=dsse.CHANGESET_TYPE)
    origin = seq = None
    try:
        obj = jsonc.loads(env.payload)
        if isinstance(obj, dict):
            origin = obj.get("origin") if isinstance(obj.get("origin"), str) else None
            seq = obj.get("seq") if isinstance(obj.get("seq"), int) else None
        _local.peeked = (data, max_bytes, env, obj) if isinstance(data, bytes) else None
    except PocsyncError:
        pass
    return changeset_id(env.payload), origin, seq
