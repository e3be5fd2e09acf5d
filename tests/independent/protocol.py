"""A second, independent reading of docs/PROTOCOL.md — written from the document, NOT from pocsync.

It imports nothing from pocsync (only the standard library and the Ed25519 primitive of
`cryptography`) and is deliberately small and direct: strict JSON (§2), envelopes (§5), manifests
and their installation (§6), change-set acceptance (§8), op receipt rules (§7.1, §8.2), the merge
and the view digest (§9), equivocation (§11), signed peer requests (§13.2) and templates (§18).  The tests run
every vector through it; where it and pocsync disagree, the document is ambiguous or one of the two
is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.independent.dsse_verify import pae


class Reject(Exception):
    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# --- §2 strict JSON -------------------------------------------------------------------------------
JSON_ORDER = (
    "not_utf8",
    "byte_order_mark",
    "too_deep",
    "malformed_json",
    "duplicate_key",
    "float_not_allowed",
    "int_out_of_range",
    "lone_surrogate",
)
MAX_DEPTH = 32
LIMIT = 2**53 - 1


def _depth(text: str) -> int:
    """§2: open [ and { outside strings; a string runs to the next unescaped quote or the end."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def strict_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Reject("not_utf8") from None
    if text[:1] == "\ufeff":
        raise Reject("byte_order_mark")
    if _depth(text) > MAX_DEPTH:
        raise Reject("too_deep")
    found: set[str] = set()

    def obj(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            found.add("duplicate_key")
        return dict(pairs)

    def bad_float(_: str) -> None:
        found.add("float_not_allowed")

    def integer(t: str) -> int:
        if len(t.lstrip("-")) > 16 or abs(int(t)) > LIMIT:  # the digits alone decide (no int() of 4301+)
            found.add("int_out_of_range")
            return 0
        return int(t)

    try:
        value = json.loads(
            text, object_pairs_hook=obj, parse_float=bad_float, parse_int=integer, parse_constant=bad_float
        )
    except ValueError:
        raise Reject("malformed_json") from None

    def strings(v: Any) -> None:
        if isinstance(v, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in v):
                found.add("lone_surrogate")
        elif isinstance(v, dict):
            for k, w in v.items():
                strings(k)
                strings(w)
        elif isinstance(v, list):
            for w in v:
                strings(w)

    strings(value)
    for reason in JSON_ORDER:
        if reason in found:
            raise Reject(reason)
    return value


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- §5 envelopes ------------------------------------------------------------------------------------
def b64(text: object) -> bytes:
    if not isinstance(text, str):
        raise Reject("bad_envelope")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise Reject("bad_envelope") from None


def envelope(data: bytes, payload_type: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    obj = strict_json(data)
    if not isinstance(obj, dict) or set(obj) != {"payloadType", "payload", "signatures"}:
        raise Reject("bad_envelope")
    if not isinstance(obj["payloadType"], str):
        raise Reject("bad_envelope")
    if obj["payloadType"] != payload_type:
        raise Reject("wrong_payload_type")
    payload = b64(obj["payload"])
    if not isinstance(obj["signatures"], list):
        raise Reject("bad_envelope")
    sigs = []
    for s in obj["signatures"]:
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s["keyid"], str):
            raise Reject("bad_envelope")
        sigs.append((s["keyid"], b64(s["sig"])))
    return payload, sigs


def ed_ok(public: bytes, sig: bytes, payload_type: str, payload: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, pae(payload_type, payload))
        return True
    except (InvalidSignature, ValueError):
        return False


# --- §6 manifest -------------------------------------------------------------------------------------
MANIFEST_TYPE = "application/vnd.pocsync.manifest+json"
CHANGESET_TYPE = "application/vnd.pocsync.changeset+json"
PEER_TYPE = "application/vnd.pocsync.peer-request+json"


@dataclass
class Node:
    keys: list[dict]
    scope: list[dict]
    removed_at_seq: int | None
    restarts: list[dict]
    role: str = "regional"

    def key(self, name: str, seq: int | None) -> bytes | None:
        for k in self.keys:
            if k["name"] != name:
                continue
            if seq is None:
                return base64.b64decode(k["public"])
            if self.removed_at_seq is not None and seq > self.removed_at_seq:
                return None
            if k["from_seq"] <= seq and (k["until_seq"] is None or seq <= k["until_seq"]):
                return base64.b64decode(k["public"])
        return None

    def states(self, seq: int) -> set[str] | str:
        current: set[str] | str = set()
        for step in self.scope:
            if step["from_seq"] <= seq:
                current = "all" if step["states"] == "all" else set(step["states"])
        return current

    def segment(self, seq: int) -> tuple[int, str | None]:
        seg: tuple[int, str | None] = (1, None)
        for r in self.restarts:
            if seg[0] <= r["seq"] <= seq:
                seg = (r["seq"], r["prev"])
        return seg


@dataclass
class Manifest:
    id: str
    version: int
    expires: int
    threshold: int
    roots: dict[str, bytes]
    nodes: dict[str, Node]
    features: set[str]
    policy: dict
    payload: bytes
    sigs: list[tuple[str, bytes]]
    raw_nodes: dict = field(default_factory=dict)

    def signed_by(self, roots: dict[str, bytes]) -> set[str]:
        return {kid for kid, sig in self.sigs if kid in roots and ed_ok(roots[kid], sig, MANIFEST_TYPE, self.payload)}


def manifest(data: bytes) -> Manifest:
    payload, sigs = envelope(data, MANIFEST_TYPE)
    p = strict_json(payload)
    roots = {}
    for r in p["roots"]:
        raw = base64.b64decode(r["public"])
        assert r["keyid"] == "root:" + hashlib.sha256(raw).hexdigest()[:16], "root keyid not derived from its key"
        roots[r["keyid"]] = raw
    nodes = {
        nid: Node(n["signing_keys"], n.get("scope") or [], n.get("removed_at_seq"), n.get("restarts") or [], n["role"])
        for nid, n in p["nodes"].items()
    }
    expires = int(datetime.strptime(p["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    return Manifest(
        "sha256:" + hashlib.sha256(payload).hexdigest(),
        p["version"],
        expires,
        p["threshold"],
        roots,
        nodes,
        set(p.get("features") or []),
        p.get("policy") or {},
        payload,
        sigs,
        p["nodes"],
    )


def install_check(current: Manifest | None, new: Manifest, *, now_s: int, software: set[str]) -> str | None:
    """§6 Installing: the reason a node refuses ``new``, or None."""
    if new.features - software:
        return "unsupported_feature"
    if now_s >= new.expires:
        return "manifest_expired"
    if current is not None:
        if new.version == current.version and new.payload == current.payload:
            return "already_installed"
        if new.version <= current.version:
            return "manifest_rollback"
        if new.version != current.version + 1:
            return "manifest_gap"
        if len(new.signed_by(current.roots)) < current.threshold:
            return "threshold_not_met"
    if len(new.signed_by(new.roots)) < new.threshold:
        return "threshold_not_met"
    return None


# --- §7, §8 change-sets ------------------------------------------------------------------------------
HLC = re.compile(r"[0-9]{13}-[0-9]{4}")
NODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
CSID = re.compile(r"sha256:[0-9a-f]{64}")
STATE = re.compile(r"[A-Z]{3}")
SPACE = set(
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def is_hlc(v: object) -> bool:
    return isinstance(v, str) and HLC.fullmatch(v) is not None


@dataclass
class CS:
    id: str
    origin: str
    seq: int
    prev: str | None
    hlc: str
    author: str
    ops: list[dict]
    data: bytes


def changeset(data: bytes, m: Manifest, *, max_bytes: int = 262_144) -> CS:
    """§8 steps 1, 2, 4, 5 (what depends on the manifest only); raises Reject or Park."""
    if len(data) > max_bytes:
        raise Reject("oversize")
    payload, sigs = envelope(data, CHANGESET_TYPE)
    if len(sigs) != 1:
        raise Reject("signature_count")
    keyid, sig = sigs[0]
    node_id, _, name = keyid.partition(":")
    node = m.nodes.get(node_id)
    public = node.key(name, None) if node else None
    if public is None or not ed_ok(public, sig, CHANGESET_TYPE, payload):
        reason = "unknown_key" if public is None else "bad_signature"
        try:  # §8 step 4: the one thing read before verification
            peek = strict_json(payload).get("manifest")
        except (Reject, AttributeError):
            peek = None
        if isinstance(peek, int) and not isinstance(peek, bool) and peek > m.version:
            raise Park("manifest_unknown")
        raise Reject(reason)
    p = strict_json(payload)
    if not isinstance(p, dict):
        raise Reject("bad_changeset")
    if p.get("type") != "pocsync.changeset/v1":
        raise Reject("wrong_type")
    ok = (
        isinstance(p.get("origin"), str)
        and NODE.fullmatch(p["origin"])
        and all(isinstance(p.get(f), int) and not isinstance(p.get(f), bool) and p[f] >= 1 for f in ("seq", "manifest"))
        and "prev" in p
        and (p["prev"] is None or (isinstance(p["prev"], str) and CSID.fullmatch(p["prev"])))
        and is_hlc(p.get("hlc"))
        and isinstance(p.get("author"), str)
        and not all(c in SPACE for c in p["author"])
        and len(p["author"]) <= 200
        and isinstance(p.get("ops"), list)
        and len(p["ops"]) >= 1
    )
    if not ok:
        raise Reject("bad_changeset")
    if len(p["ops"]) > 1000:
        raise Reject("too_many_ops")
    if not all(
        isinstance(o, dict) and isinstance(o.get("op"), str) and isinstance(o.get("key"), str) for o in p["ops"]
    ):
        raise Reject("bad_changeset")
    if p["manifest"] > m.version:
        raise Park("manifest_unknown")
    if p["origin"] != node_id:
        raise Reject("key_not_of_origin")
    if node.key(name, p["seq"]) is None:  # type: ignore[union-attr]
        raise Reject("key_out_of_range")
    return CS(
        "sha256:" + hashlib.sha256(payload).hexdigest(),
        p["origin"],
        p["seq"],
        p["prev"],
        p["hlc"],
        p["author"],
        p["ops"],
        data,
    )


class Park(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- §7.1 entries, §8.2 op kinds ------------------------------------------------------------------------
KINDS = ("diplomatic", "technical")
HOLD_OPS = ("notice", "object", "approve", "release")
FEATURE_OF = {
    "note": "toy-note",
    "template": "templates",
    "check": "comm-checks",
    "confirm": "freshness",
    **{k: "held-changes" for k in HOLD_OPS},
}
SOFTWARE_FEATURES = {"toy-note", "templates", "comm-checks", "freshness", "held-changes"}
# §15.2: results per channel kind, the member each result requires, positive results
CHECK_RESULTS = {
    "email": ("sent", "acknowledged", "no_response", "bounced"),
    "phone": ("answered", "no_answer", "wrong_number"),
}
CHECK_MEMBER = {
    "sent": ("deadline_ms", 0, 2**53 - 1),
    "acknowledged": ("response_seconds", 0, 2**53 - 1),
    "bounced": ("smtp_code", 400, 599),
}
CHECK_POSITIVE = ("acknowledged", "answered")


def check_refusal(op: dict) -> str | None:
    """§15.2 own rules of a check op."""
    ch = op.get("channel")
    if not isinstance(ch, str) or not re.fullmatch(r"(email|phone):[0-9a-f]{64}", ch):
        return "bad_check"
    if op.get("result") not in CHECK_RESULTS[ch.split(":")[0]]:
        return "bad_check"
    camp = op.get("campaign")
    if camp is not None and not (isinstance(camp, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", camp)):
        return "bad_check"
    for result, (member, lo, hi) in CHECK_MEMBER.items():
        v = op.get(member)
        if result == op["result"]:
            if type(v) is not int or not lo <= v <= hi:
                return "bad_check"
        elif v is not None:
            return "bad_check"
    return None


BASE_OPS = ("put", "delete", "withdraw")


def entry_refusal(key: object, e: object, cs_hlc: str) -> str | None:
    if not isinstance(key, str) or key.count("/") != 1:
        return "bad_key"
    state, kind = key.split("/")
    if not STATE.fullmatch(state) or kind not in KINDS:
        return "bad_key"
    if not isinstance(e, dict):
        return "not_an_object"
    if e.get("kind") not in KINDS:
        return "unknown_kind"
    if e.get("state") != state or e.get("kind") != kind:
        return "key_mismatch"
    org = e.get("organisation")
    if not isinstance(org, str) or all(c in SPACE for c in org):
        return "missing_organisation"
    for f in ("emails", "phones", "languages", "networks"):
        v = e.get(f)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            return "bad_field"
    for f in ("position", "person", "timezone", "notes"):
        if e.get(f) is not None and not isinstance(e.get(f), str):
            return "bad_field"
    if e.get("available_24_7") is not None and not isinstance(e.get("available_24_7"), bool):
        return "bad_field"
    sc = e.get("secure_channels")
    if sc is not None and not (isinstance(sc, list) and all(isinstance(x, dict) for x in sc)):
        return "bad_field"
    if not e.get("emails") and not e.get("phones"):
        return "missing_contact"
    if kind == "technical" and e.get("person") is not None:
        return "person_on_technical"
    he = e.get("holder_epoch")
    if not is_hlc(he) or he > cs_hlc:
        return "bad_holder_epoch"
    return None


def op_refusal(op: dict, cs: CS, m: Manifest) -> str | None:
    kind = op["op"]
    if kind not in BASE_OPS and kind not in FEATURE_OF:
        return "unknown_op"
    if kind in FEATURE_OF and FEATURE_OF[kind] not in m.features:
        return "feature_off"
    if kind == "template":  # §18.1: the key is the id; the scope rule is the publisher rule
        if not TEMPLATE_ID.fullmatch(op["key"]):
            return "bad_key"
        publishers = m.policy.get("templates", {}).get("publishers")
        if (
            publishers is None
            and m.nodes[cs.origin].role != "un"
            or publishers is not None
            and cs.origin not in publishers
        ):
            return "out_of_scope"
        return template_refusal(op)
    if kind in BASE_OPS or kind in ("check", "confirm") or kind in HOLD_OPS:
        parts = op["key"].split("/")
        if len(parts) != 2 or not STATE.fullmatch(parts[0]) or parts[1] not in KINDS:
            return "bad_key"
        state = parts[0]
    else:
        if not STATE.fullmatch(op["key"]):
            return "bad_key"
        state = op["key"]
    scope = m.nodes[cs.origin].states(cs.seq)
    if scope != "all" and state not in scope:
        return "out_of_scope"
    if kind == "put":
        return entry_refusal(op["key"], op.get("entry"), cs.hlc)
    if kind == "check":
        return check_refusal(op)
    if kind in HOLD_OPS:
        return hold_refusal(op, m)
    if kind == "note":
        limit = m.policy.get("toy-note", {}).get("max_length", 280)
        t = op.get("text")
        if not isinstance(t, str) or all(c in SPACE for c in t) or len(t) > limit:
            return "bad_note"
    return None


# --- §18 templates ------------------------------------------------------------------------------------
TEMPLATE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
PROP_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
LANG = re.compile(r"[a-z]{2}")
NODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
PURPOSES = ("request_for_assistance", "notice_of_malicious_activity", "request_for_information", "reply")
SYNTAX = set("\\^$.|?*+()[]{}")


def _txt(v: object, most: int) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= most and not all(c in SPACE for c in v)


def _integer(v: object) -> bool:
    return type(v) is int


def safe_pattern(p: object) -> bool:
    """§18.3, read with an explicit stack of open groups (a different shape from pocsync's recursive reader)."""
    if not isinstance(p, str) or not 1 <= len(p) <= 200 or any(not 0x20 <= ord(c) <= 0x7E for c in p):
        return False
    s = p[1:] if p.startswith("^") else p
    if s.endswith("$") and not _escaped_at(s, len(s) - 1):
        s = s[:-1]
    # stack of frames: [holds a quantifier, holds "|"]; atoms: what the last atom was (None: nothing to repeat)
    stack: list[list[bool]] = [[False, False]]
    last: tuple[bool, bool] | None = None  # (quantifier inside, "|" inside) of the last atom
    quantifiers = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "(":
            if s[i + 1 : i + 2] == "?" or len(stack) > 4:
                return False
            stack.append([False, False])
            last = None
            i += 1
            continue
        if c == ")":
            if len(stack) == 1:
                return False
            q, a = stack.pop()
            last = (q, a)
            stack[-1][0] |= q
            stack[-1][1] |= a
            i += 1
        elif c == "|":
            stack[-1][1] = True
            last = None
            i += 1
            continue
        elif c in "?*+{":
            if last is None:
                return False
            if c == "{":
                m = re.match(r"\{([0-9]{1,4})(,([0-9]{0,4}))?\}", s[i:])
                if not m:
                    return False
                lo = int(m.group(1))
                hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else 1000)
                if lo > hi or hi > 1000:
                    return False
                i += len(m.group(0))
            else:
                hi = 1 if c == "?" else 1001
                i += 1
            quantifiers += 1
            if quantifiers > 10 or (hi > 1 and (last[0] or last[1])):
                return False
            stack[-1][0] = True
            last = None  # a quantifier cannot follow a quantifier
            continue
        elif c == "[":
            j = _class_end(s, i)
            if j < 0:
                return False
            last = (False, False)
            i = j
        elif c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in set("dDwWsS/") | SYNTAX:
                return False
            last = (False, False)
            i += 2
        elif c in SYNTAX and c != ".":
            return False
        else:
            last = (False, False)
            i += 1
    return len(stack) == 1


def _escaped_at(s: str, k: int) -> bool:
    n = 0
    while k - 1 - n >= 0 and s[k - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


def _class_end(s: str, i: int) -> int:
    """Index after the class opening at s[i], or -1 when it breaks §18.3."""
    i += 1
    if s[i : i + 1] == "^":
        i += 1
    items: list[str | None] = []  # single characters, None for a class escape, "-" markers kept as characters
    while True:
        if i >= len(s):
            return -1
        c = s[i]
        if c == "]":
            break
        if c == "[":
            return -1
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in set("dDwWsS/-") | SYNTAX:
                return -1
            items.append(None if s[i + 1] in "dDwWsS" else s[i + 1])
            i += 2
        else:
            items.append(c if c != "-" else "RANGE")
            i += 1
    if not items:
        return -1
    # ranges: "x - y" (x and y any characters, "-" too); a "-" first or last in the class is a character
    k = 0
    while k < len(items):
        if k + 2 < len(items) and items[k + 1] == "RANGE":
            lo, hi = items[k], items[k + 2]
            lo = "-" if lo == "RANGE" else lo
            hi = "-" if hi == "RANGE" else hi
            if lo is None or hi is None or ord(lo) > ord(hi):
                return -1
            k += 3
        else:
            k += 1
    return i + 1


def template_refusal(op: dict) -> str | None:
    """§18.2 and §18.3: ``bad_template`` or None."""
    d = op.get("template")
    bad = "bad_template"
    if (
        not isinstance(d, dict)
        or len(canonical(d)) > 65536
        or set(d) - {"id", "version", "purpose", "languages", "schema"}
    ):
        return bad
    if not isinstance(d.get("id"), str) or not TEMPLATE_ID.fullmatch(d["id"]):
        return bad
    if not _integer(d.get("version")) or not 1 <= d["version"] <= 2**31 - 1 or d.get("purpose") not in PURPOSES:
        return bad
    sc = d.get("schema")
    if not isinstance(sc, dict) or set(sc) - {"type", "properties", "required"} or sc.get("type") != "object":
        return bad
    props = sc.get("properties")
    if not isinstance(props, dict) or not 1 <= len(props) <= 64:
        return bad
    for name, pr in props.items():
        if not PROP_NAME.fullmatch(name) or not isinstance(pr, dict):
            return bad
        if set(pr) - {"type", "enum", "maxLength", "pattern", "format"} or pr.get("type") not in (
            "string",
            "integer",
            "boolean",
        ):
            return bad
        t = pr["type"]
        if t != "string" and set(pr) & {"maxLength", "pattern", "format"}:
            return bad
        if "enum" in pr:
            e = pr["enum"]
            if not isinstance(e, list) or not 1 <= len(e) <= 100:
                return bad
            ok = {"string": lambda v: _txt(v, 200), "integer": _integer, "boolean": lambda v: type(v) is bool}[t]
            if not all(ok(v) for v in e) or len(set(e)) != len(e):
                return bad
        if "maxLength" in pr and not (_integer(pr["maxLength"]) and 1 <= pr["maxLength"] <= 10000):
            return bad
        if "pattern" in pr and not safe_pattern(pr["pattern"]):
            return bad
        if "format" in pr and pr["format"] not in ("date-time", "email"):
            return bad
    req = sc.get("required", [])
    if (
        not isinstance(req, list)
        or not all(isinstance(r, str) and r in props for r in req)
        or len(set(req)) != len(req)
    ):
        return bad
    langs = d.get("languages")
    if not isinstance(langs, dict) or not {"en", "fr", "es"} <= set(langs) or len(langs) > 16:
        return bad
    for code, lang in langs.items():
        if not LANG.fullmatch(code) or not isinstance(lang, dict) or set(lang) != {"title", "text", "fields"}:
            return bad
        if not _txt(lang["title"], 200) or not _txt(lang["text"], 20000):
            return bad
        f = lang["fields"]
        if not isinstance(f, dict) or set(f) != set(props):
            return bad
        for name, fd in f.items():
            if not isinstance(fd, dict) or set(fd) - {"label", "help", "options"} or not _txt(fd.get("label"), 200):
                return bad
            if "help" in fd and not _txt(fd["help"], 2000):
                return bad
            if "options" in fd:
                e = props[name].get("enum")
                o = fd["options"]
                if (
                    props[name]["type"] != "string"
                    or e is None
                    or not isinstance(o, dict)
                    or set(o) != set(e)
                    or not all(_txt(v, 200) for v in o.values())
                ):
                    return bad
    if d["id"] != op.get("key"):
        return bad
    return None


# --- §16 held contact changes -------------------------------------------------------------------------------
REF = re.compile(r"sha256:[0-9a-f]{64}#(0|[1-9][0-9]{0,3})")
GUARDED = ("person", "emails", "phones", "secure_channels", "public_key", "public_key_fingerprint")
UNGUARDED = (
    "state",
    "kind",
    "organisation",
    "position",
    "available_24_7",
    "timezone",
    "languages",
    "networks",
    "notes",
    "holder_epoch",
)  # §16.3: every other member is guarded, known or not


def hold_refusal(op: dict, m: Manifest) -> str | None:
    """§16.2: members, the put ref, the staff signature."""
    allowed = {"op", "key", "put"} | ({"staff"} if op["op"] == "approve" else set())
    if not set(op) <= allowed or not isinstance(op.get("put"), str) or not REF.fullmatch(op["put"]):
        return "bad_hold"
    if "staff" not in op:
        return None
    st = op["staff"]
    if (
        not isinstance(st, dict)
        or set(st) != {"origin", "name", "sig"}
        or not all(isinstance(v, str) for v in st.values())
    ):
        return "bad_hold"
    keys = m.policy.get("held-changes", {}).get("staff_keys", {}).get(st["origin"], [])
    pub = [k["public"] for k in keys if k["name"] == st["name"]]
    if not pub:
        return "bad_staff_signature"
    msg = b"pocsync.held-approve/v1\n" + op["key"].encode() + b"\n" + op["put"].encode() + b"\n"
    try:
        sig = base64.b64decode(st["sig"], validate=True)
        Ed25519PublicKey.from_public_bytes(base64.b64decode(pub[0])).verify(sig, msg)
    except (binascii.Error, ValueError, InvalidSignature):
        return "bad_staff_signature"
    return None


def guarded(e: dict | None) -> bytes:
    return canonical({f: v for f, v in (e or {}).items() if f not in UNGUARDED})


def held_sweep(ops: list[dict], holds: list[dict], m: Manifest) -> tuple[dict | None, list[str]]:
    """§16.3 for one key. ``ops``/``holds``: dicts with rank, seq, i, origin, op, entry/put, author, staff.

    Returns (winning put or None, the §16.5 lines of the key)."""
    pol = m.policy.get("held-changes", {})
    hold_ms = 1000 * pol.get("hold_seconds", 86_400)
    since = pol.get("since")
    un = {nid for nid, n in m.raw_nodes.items() if n.get("role") == "un"}

    def effect(o: dict) -> dict | None:
        mine = [h for h in holds if h["put"] == o["ref"] and h["rank"][0] > o["rank"][0]]
        objs = sorted(h["rank"] for h in mine if h["op"] == "object")
        first_obj = objs[0] if objs else None
        notices = [h for h in mine if h["op"] == "notice" and h["origin"] != o["origin"]]
        best = None
        for h in mine:
            free = first_obj is None or h["rank"] < first_obj
            ok = False
            if h["op"] == "release" and free:
                ok = any(
                    n["rank"] < h["rank"] and int(h["rank"][0][:13]) >= int(n["rank"][0][:13]) + hold_ms
                    for n in notices
                )
            elif h["op"] == "approve":
                st = h.get("staff")
                second = h["origin"] != o["origin"] or (
                    isinstance(st, dict) and st.get("origin") == o["origin"] and st.get("name") != o["author"]
                )
                ok = second and (free or h["origin"] in un)
            if ok and (best is None or h["rank"] < best["rank"]):
                best = h
        return best

    events = sorted((o["rank"], 0, o, None) for o in ops)
    latest: dict[str, dict] = {}
    seen: dict[str, tuple] = {}
    withdrawal = None
    last = None
    held: dict[str, dict] = {}
    done: set[str] = set()

    def win() -> dict | None:
        cands = [a for a in latest.values() if a["op"] == "put"] + ([withdrawal] if withdrawal else [])
        return max(cands, key=lambda a: a["rank"], default=None)

    def take(a: dict) -> None:
        nonlocal withdrawal, last
        cur = latest.get(a["origin"])
        if cur is None or (a["seq"], a["i"]) > (cur["seq"], cur["i"]):
            latest[a["origin"]] = a
        if a["op"] == "withdraw" and (withdrawal is None or a["rank"] > withdrawal["rank"]):
            withdrawal = a
        w = win()
        if w is not None and w["op"] == "put":
            last = w

    while events:
        events.sort(key=lambda e: (e[0], e[1]))
        rank, phase, o, e = events.pop(0)
        if phase == 0:
            if o["origin"] not in seen or (o["seq"], o["i"]) > seen[o["origin"]]:
                seen[o["origin"]] = (o["seq"], o["i"])
            if (
                o["op"] == "put"
                and last is not None
                and (since is None or o["rank"][0] >= since)
                and guarded(o["entry"]) != guarded(last["entry"])
            ):
                held[o["ref"]] = o
                e = effect(o)
                if e is not None:
                    events.append(((e["rank"][0], o["origin"], o["rank"][2], o["rank"][3]), 1, o, e))
                continue
            take(o)
        elif seen[o["origin"]] == (o["seq"], o["i"]):
            take({**o, "rank": rank})
            done.add(o["ref"])
    lines = []
    for ref, o in held.items():
        if ref in done or seen[o["origin"]] != (o["seq"], o["i"]) or effect(o) is not None:
            continue
        mine = [h for h in holds if h["put"] == ref and h["rank"][0] > o["rank"][0]]
        objs = sorted(h["rank"] for h in mine if h["op"] == "object")
        key = o["key"]
        if objs:
            lines.append(f"held-objected {key} {objs[0][2]}#{objs[0][3]}\n")
            continue
        lines.append(f"held {key} {ref}\n")
        notices = sorted(h["rank"] for h in mine if h["op"] == "notice" and h["origin"] != o["origin"])
        if notices:
            lines.append(f"held-notice {key} {notices[0][2]}#{notices[0][3]}\n")
    w = win()
    return (w if w is not None and w["op"] == "put" else None), lines


# --- §8 acceptance over a sequence of arrivals, §9 merge, §11 equivocation --------------------------------
@dataclass
class Replica:
    m: Manifest
    log: dict[tuple[str, int], CS] = field(default_factory=dict)
    parked: dict[str, bytes] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    proofs: set[tuple[str, int]] = field(default_factory=set)
    refused_chain: dict[tuple[str, int], set[str]] = field(default_factory=dict)  # ids refused at §8 step 6

    def _held_ids(self, origin: str, seq: int) -> set[str]:
        """§8 step 6: the verified change-sets held at (origin, seq): logged, parked after step 5, or refused by
        the chain checks of step 6."""
        ids = set(self.refused_chain.get((origin, seq), ()))
        if (origin, seq) in self.log:
            ids.add(self.log[(origin, seq)].id)
        for data in self.parked.values():
            try:
                p = changeset(data, self.m)
            except (Park, Reject):
                continue  # not verified: never evidence
            if (p.origin, p.seq) == (origin, seq):
                ids.add(p.id)
        return ids

    def receive(self, data: bytes, now_ms: int) -> str:
        try:
            cs = changeset(data, self.m)
        except Park as p:
            self.parked[hashlib.sha256(data).hexdigest()] = data
            return "parked:" + p.reason
        except Reject as r:
            self.quarantined.append(r.reason)
            return "quarantined:" + r.reason
        have = self.log.get((cs.origin, cs.seq))
        if have is not None and have.id == cs.id:
            return "duplicate"
        if self._held_ids(cs.origin, cs.seq) - {cs.id}:
            self.proofs.add((cs.origin, cs.seq))
            self.parked.pop(cs.id, None)
            return "equivocation"

        def chain_refused(reason: str) -> str:
            self.refused_chain.setdefault((cs.origin, cs.seq), set()).add(cs.id)
            self.quarantined.append(reason)
            return "quarantined:" + reason

        node = self.m.nodes[cs.origin]
        seg_seq, seg_prev = node.segment(cs.seq)
        if cs.seq == seg_seq:
            if cs.prev != seg_prev:
                return chain_refused("bad_prev")
        else:
            pred = self.log.get((cs.origin, cs.seq - 1))
            if pred is None:
                self.parked[cs.id] = data
                return "parked:gap"
            if cs.prev != pred.id:
                return chain_refused("prev_mismatch")
            if cs.hlc < pred.hlc:
                return chain_refused("hlc_regression")
        if int(cs.hlc[:13]) > now_ms + 300_000:
            self.parked[cs.id] = data
            return "parked:clock_skew"
        self.log[(cs.origin, cs.seq)] = cs
        self.parked.pop(cs.id, None)
        for key, waiting in list(self.parked.items()):  # release what now follows
            if key in self.parked:
                del self.parked[key]
                self.receive(waiting, now_ms)
        return "accepted"

    def refused_and_lines(self) -> tuple[list[list], str]:
        refused: list[list] = []
        latest: dict[tuple[str, str], tuple] = {}  # (origin, key) -> (rank, op)
        withdrawals: dict[str, tuple] = {}
        other: dict[tuple[str, str], tuple] = {}  # (namespace, key) -> rank
        other_t: dict[tuple[str, str], tuple] = {}  # template keys -> (version, hlc, origin, id, index)
        guard = "held-changes" in self.m.features
        entry_ops: dict[str, list[dict]] = {}
        hold_ops: dict[str, list[dict]] = {}
        for (origin, seq), cs in sorted(self.log.items()):
            node = self.m.nodes[origin]
            forks = [s for (o, s) in self.proofs if o == origin and node.segment(s)[0] == node.segment(seq)[0]]
            for i, op in enumerate(cs.ops):
                why = "equivocation" if forks and seq >= min(forks) else op_refusal(op, cs, self.m)
                if why is not None:
                    refused.append([origin, seq, i, why])
                    continue
                rank = (cs.hlc, origin, cs.id, i)
                if op["op"] in HOLD_OPS:
                    hold_ops.setdefault(op["key"], []).append(
                        {"rank": rank, "origin": origin, "op": op["op"], "put": op["put"], "staff": op.get("staff")}
                    )
                    continue
                if guard:
                    entry_ops.setdefault(op["key"], []).append(
                        {
                            "rank": rank,
                            "seq": seq,
                            "i": i,
                            "origin": origin,
                            "op": op["op"],
                            "key": op["key"],
                            "entry": op.get("entry"),
                            "author": cs.author,
                            "ref": f"{cs.id}#{i}",
                        }
                    )
                    if op["op"] == "withdraw":
                        withdrawals[op["key"]] = max(withdrawals.get(op["key"], rank), rank)
                    continue
                if op["op"] == "template":  # §18.1: version first; the line keeps (id, index) at the end
                    k = ("template", op["key"])
                    trank = (op["template"]["version"],) + rank
                    other_t[k] = max(other_t.get(k, trank), trank)
                    continue
                if op["op"] in ("note", "confirm", "check"):
                    if op["op"] == "check":  # §15.3: latest per channel, latest positive, latest per campaign
                        base = op["key"] + "/" + op["channel"]
                        names = [("check", base)]
                        if op["result"] in CHECK_POSITIVE:
                            names.append(("verified", base))
                        if op.get("campaign") is not None:
                            names.append(("campaign", op["campaign"] + "/" + base))
                    else:
                        names = [(op["op"], op["key"])]
                    for k in names:
                        other[k] = max(other.get(k, rank), rank)
                    continue
                # latest assertion per (origin, key): greatest (seq, index)
                prior = latest.get((origin, op["key"]))
                if prior is None or (seq, i) > prior[0]:
                    latest[(origin, op["key"])] = ((seq, i), rank, op["op"])
                if op["op"] == "withdraw":
                    withdrawals[op["key"]] = max(withdrawals.get(op["key"], rank), rank)
        lines = []
        for key in {k for (_, k) in latest} | set(withdrawals):
            candidates = [(r, "put") for (o, k), (_, r, op) in latest.items() if k == key and op == "put"]
            if key in withdrawals:
                candidates.append((withdrawals[key], "withdraw"))
            if candidates:
                rank, op = max(candidates)
                if op == "put":
                    lines.append(f"entry {key} {rank[2]}#{rank[3]}\n")
        lines += [f"{ns} {k} {r[2]}#{r[3]}\n" for (ns, k), r in other.items()]
        lines += [f"{ns} {k} {r[3]}#{r[4]}\n" for (ns, k), r in other_t.items()]
        for key in set(entry_ops) | set(hold_ops):
            w, extra = held_sweep(entry_ops.get(key, []), hold_ops.get(key, []), self.m)
            if w is not None:
                lines.append(f"entry {key} {w['ref']}\n")
            lines += extra
        return sorted(refused), "".join(sorted(lines))


# --- §15 channel ids and the overdue judgement -----------------------------------------------------------
def channel_id(kind: str, value: str) -> str:
    """§15.1: email stripped of white space at both ends and lower-cased; phone: "+" if it starts with one,
    then its ASCII digits."""
    if kind == "email":
        norm = value.strip().lower()
    else:
        v = value.strip()
        norm = ("+" if v[:1] == "+" else "") + "".join(c for c in v if c in "0123456789")
    return kind + ":" + hashlib.sha256(norm.encode("utf-8")).hexdigest()


def overdue(
    policy: dict, networks: list, last_modified: str, last_confirmed: str | None, last_verified: str | None, now_ms: int
) -> list[str]:
    """§15.5: which periods an entry has overrun at now_ms."""
    confirm, verify = policy.get("confirm_days", 365), policy.get("verify_days", 180)
    for n in networks:
        sub = (policy.get("networks") or {}).get(n)
        if sub:
            confirm, verify = (
                min(confirm, sub.get("confirm_days", confirm)),
                min(verify, sub.get("verify_days", verify)),
            )
    ms = lambda h: int(h[:13])  # noqa: E731
    day = 86_400_000
    out = []
    if now_ms - max(ms(last_modified), ms(last_confirmed) if last_confirmed else 0) > confirm * day:
        out.append("confirm")
    if now_ms - ms(last_verified or last_modified) > verify * day:
        out.append("verify")
    return out


def digest(lines: str) -> str:
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


def check_proof(proof: dict, m: Manifest) -> bool:
    """§11: both envelopes pass §8 steps 1-5, share origin and seq, and differ."""
    a, b = changeset(proof["a"].encode(), m), changeset(proof["b"].encode(), m)
    return (a.origin, a.seq) == (b.origin, b.seq) == (proof["origin"], proof["seq"]) and a.id != b.id


# --- §13.2 signed peer requests ------------------------------------------------------------------------------
def peer_request(
    header: str | None, *, m: Manifest, me: str, method: str, path: str, body: bytes, now_ms: int, max_age_ms: int
) -> str | None:
    """The 401 reason for a peer request, or None when it is accepted."""
    if not header or not header.startswith("Pocsync ") or len(header) > 4096:
        return "unsigned_request"
    try:
        raw = base64.b64decode(header[len("Pocsync ") :], validate=True)
        payload, sigs = envelope(raw, PEER_TYPE)
    except (binascii.Error, ValueError):
        return "unsigned_request"
    except Reject as r:
        return r.reason
    if len(sigs) != 1:
        return "signature_count"
    keyid, sig = sigs[0]
    node_id, _, name = keyid.partition(":")
    node = m.nodes.get(node_id)
    key = None
    if node is not None and node.removed_at_seq is None:
        for k in node.keys:
            if k["name"] == name and k["until_seq"] is None:
                key = base64.b64decode(k["public"])
    if key is None:
        return "unknown_key"
    if not ed_ok(key, sig, PEER_TYPE, payload):
        return "bad_signature"
    try:
        p = strict_json(payload)
    except Reject:
        return "bad_request"
    if not isinstance(p, dict):
        return "bad_request"
    if p.get("node") != node_id:
        return "key_not_of_origin"
    if p.get("target") != me:
        return "wrong_target"
    if (
        p.get("method") != method
        or p.get("path") != path
        or p.get("body") != "sha256:" + hashlib.sha256(body).hexdigest()
    ):
        return "bad_request"
    if not isinstance(p.get("ts"), int) or abs(now_ms - p["ts"]) > max_age_ms:
        return "stale_request"
    return None
