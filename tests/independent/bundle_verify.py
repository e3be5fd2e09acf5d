"""An independent verifier of a State's history bundle (PROTOCOL.md §17.2) — written from the document,
NOT from pocsync.  It imports nothing from pocsync: the standard library, `cryptography`'s Ed25519 and
the second reading of the protocol in tests/independent/protocol.py.

What it checks, against a root public key obtained apart from the bundle:
1. the manifest chain: anchored at the first version that lists the root key and carries its valid
   signature (and meets its own threshold), then each next version by the §6 install rules;
2. every change-set envelope by §8 steps 1–5 under the last version (signature, key of the origin,
   key valid for the seq);
3. the history: every op it lists is an op of a verified change-set (same origin, seq, hlc, author,
   op, key and, for a put, the same entry), every op of those change-sets that concerns the State is
   listed, and where this reading knows the op kind, the listed status and refusal reason agree with
   its own judgement (§8.2: kind, feature, key, scope at the seq, entry rules).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from tests.independent import protocol as p


class BundleError(Exception):
    pass


def root_keyid(raw: bytes) -> str:
    return "root:" + hashlib.sha256(raw).hexdigest()[:16]


def verify_chain(manifests: list[bytes], root_pub_b64: str) -> p.Manifest:
    raw = base64.b64decode(root_pub_b64.strip(), validate=True)
    if len(raw) != 32:
        raise BundleError("root public key must be 32 bytes")
    kid = root_keyid(raw)
    chain = sorted((p.manifest(m) for m in manifests), key=lambda m: m.version)
    start = next(
        (i for i, m in enumerate(chain) if kid in m.roots and m.roots[kid] == raw and kid in m.signed_by({kid: raw})),
        None,
    )
    if start is None:
        raise BundleError("no manifest is signed by the given root key")
    anchor = chain[start]
    if len(anchor.signed_by(anchor.roots)) < anchor.threshold:
        raise BundleError("anchor manifest does not meet its own threshold")
    prev = anchor
    for m in chain[start + 1 :]:
        why = p.install_check(prev, m, now_s=0, software=set(m.features))
        if why is not None:
            raise BundleError(f"manifest v{m.version}: {why}")
        prev = m
    return prev


def concerns(op: dict, state: str) -> bool:
    key = op.get("key")
    if not isinstance(key, str):
        return False
    if op.get("op") == "note":
        return key == state
    return key.split("/", 1)[0] == state


def judged(op: dict, cs: p.CS, m: p.Manifest) -> str | None:
    """This reading's refusal reason, or "unknown" when it does not know the op kind."""
    if op["op"] not in p.BASE_OPS and op["op"] not in p.FEATURE_OF:
        return "unknown"
    return p.op_refusal(op, cs, m)


def hlc_time(hlc: str) -> str:
    """§17.1 ``time``: the hlc's first 13 digits (unix ms) as RFC 3339 UTC with milliseconds."""
    import datetime

    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=int(hlc[:13]))
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(hlc[:13]) % 1000:03d}Z"


def diff(before: dict | None, after: dict | None) -> list[dict]:
    """§17.1: field-by-field changes, sorted by field, equal when their canonical JSON is."""
    b, a = before or {}, after or {}
    out = []
    for f in sorted(set(b) | set(a)):
        if f in b and f in a:
            if p.canonical(b[f]) != p.canonical(a[f]):
                out.append({"field": f, "change": "changed", "before": b[f], "after": a[f]})
        elif f in a:
            out.append({"field": f, "change": "added", "before": None, "after": a[f]})
        else:
            out.append({"field": f, "change": "removed", "before": b[f], "after": None})
    return out


def check_derived(h: dict, state: str) -> None:
    """What a reader sees but no signature covers, recomputed from the signed ops (§17.1): the State, the
    order by merge rank, each op's time, and each diff (against the previous applied op of its namespace
    and key)."""
    if h.get("state") != state:
        raise BundleError(f"the history is of {h.get('state')!r}, the bundle of {state!r}")
    ops = h["ops"]
    ranks = [(x["hlc"], x["origin"], x["cs_id"], x["index"]) for x in ops]
    if ranks != sorted(ranks):
        raise BundleError("the history's ops are not in merge-rank order")
    last: dict[tuple[str, str], dict] = {}
    for x in ops:
        where = f"{x['origin']} seq {x['seq']} op {x['index']}"
        if x.get("time") != hlc_time(x["hlc"]):
            raise BundleError(f"{where}: time {x.get('time')!r} is not its hlc's")
        if x["op"] in p.BASE_OPS and x.get("namespace") != "entry":
            raise BundleError(f"{where}: an entry op listed in namespace {x.get('namespace')!r}")
        k = (str(x.get("namespace")), str(x["key"]))
        if x["op"] == "put" or "fields" in x:
            now = x.get("entry") if x["op"] == "put" else x["fields"]
            prev = last.get(k)
            before = None if prev is None else (prev.get("entry") if prev["op"] == "put" else prev.get("fields"))
            want = {
                "against": None
                if prev is None
                else {"origin": prev["origin"], "cs_id": prev["cs_id"], "index": prev["index"]},
                "changes": diff(before if isinstance(before, dict) else None, now if isinstance(now, dict) else None),
            }
            if p.canonical(x.get("diff")) != p.canonical(want):
                raise BundleError(f"{where}: its diff is not the one its signed op and the previous give")
            if x["status"] == "applied":
                last[k] = x
        elif x.get("diff") is not None:
            raise BundleError(f"{where}: a {x['op']} carries no diff")


def verify_bundle(data: bytes, root_pub_b64: str) -> dict[str, Any]:
    b = p.strict_json(data)
    if not isinstance(b, dict) or b.get("format") != "pocsync.history-bundle/v1":
        raise BundleError("not a history bundle")
    state = b["state"]
    m = verify_chain([x.encode() for x in b["manifests"]], root_pub_b64)
    changesets: dict[str, p.CS] = {}
    for env in b["changesets"]:
        try:
            cs = p.changeset(env.encode(), m)
        except (p.Reject, p.Park) as exc:
            raise BundleError(f"a change-set does not verify: {exc}") from None
        changesets[cs.id] = cs
    listed = {(x["cs_id"], x["index"]): x for x in b["history"]["ops"]}
    if len(listed) != len(b["history"]["ops"]):
        raise BundleError("the history lists an op twice")
    other: set[str] = set()
    checked = 0
    for cs in changesets.values():
        for i, op in enumerate(cs.ops):
            if not concerns(op, state):
                key = op.get("key")
                if isinstance(key, str) and key[:3].isalpha() and key[:3].isupper():
                    other.add(key[:3])
                continue
            x = listed.pop((cs.id, i), None)
            if x is None:
                raise BundleError(f"{cs.origin} seq {cs.seq} op {i} concerns {state} but the history omits it")
            same = (x["origin"], x["seq"], x["hlc"], x["author"], x["op"], x["key"]) == (
                cs.origin,
                cs.seq,
                cs.hlc,
                cs.author,
                op["op"],
                op["key"],
            )
            if (
                not same
                or (op["op"] == "put" and ("entry" not in x or p.canonical(x["entry"]) != p.canonical(op.get("entry"))))
                or (
                    "fields" in x
                    and p.canonical(x["fields"]) != p.canonical({k: v for k, v in op.items() if k not in ("op", "key")})
                )
            ):
                raise BundleError(f"the history misstates {cs.origin} seq {cs.seq} op {i}")
            why = judged(op, cs, m)
            if why != "unknown" and x.get("reason") != "equivocation":
                want = ("refused", why) if why else ("applied", None)
                if (x["status"], x.get("reason")) != want:
                    raise BundleError(
                        f"{cs.origin} seq {cs.seq} op {i}: the history says {x['status']} "
                        f"{x.get('reason')}, the signed op and the manifest say {want}"
                    )
            checked += 1
    if listed:
        raise BundleError(f"the history lists {len(listed)} op(s) no change-set in the bundle holds")
    check_derived(b["history"], state)
    return {
        "state": state,
        "manifest": m.version,
        "changesets": len(changesets),
        "ops": checked,
        "refused": sum(1 for x in b["history"]["ops"] if x["status"] == "refused"),
        "other_states": sorted(other),
    }


if __name__ == "__main__":  # python -m tests.independent.bundle_verify BUNDLE ROOT_PUB
    import sys

    print(json.dumps(verify_bundle(open(sys.argv[1], "rb").read(), open(sys.argv[2]).read()), indent=2))
