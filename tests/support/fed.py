"""An in-memory federation for unit tests: root keys, node keys, a signed manifest, replicas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync.core import changeset as csmod
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64, es256_public_jwk, x25519_public_b64
from pocsync.core.replica import Limits, MemoryState, Replica
from tests.support.data import entry, manifest_scope

T0 = 1_763_800_000_000  # fixed wall clock for tests (ms)
DAY_S = 86_400

#: the in-memory federation's nodes and their scopes (the shared example scopes, tests.support.data)
SCOPES: dict[str, Any] = {n: manifest_scope(n) for n in ("un", "eu", "osce", "arf")}


@dataclass
class Fed:
    scopes: dict[str, Any] = field(default_factory=lambda: dict(SCOPES))
    n_roots: int = 1
    threshold: int = 1

    def __post_init__(self) -> None:
        self.roots = [Ed25519PrivateKey.generate() for _ in range(self.n_roots)]
        self.keys: dict[str, dict[str, Ed25519PrivateKey]] = {}
        self.sealing = {n: X25519PrivateKey.generate() for n in self.scopes}
        self.token = {n: ec.generate_private_key(ec.SECP256R1()) for n in self.scopes}
        payload = mf.new_payload(
            [ed25519_public_b64(k) for k in self.roots], threshold=self.threshold, expires_s=T0 // 1000 + 365 * DAY_S
        )
        for node, scope in self.scopes.items():
            k = Ed25519PrivateKey.generate()
            self.keys[node] = {"k1": k}
            payload = mf.add_node(
                payload, self.info(node, "k1"), role="un" if node == "un" else "regional", scope=scope
            )
        self.manifest = self.signed(payload)

    def info(self, node: str, name: str) -> dict[str, Any]:
        return {
            "node": node,
            "organisation": f"{node} (example)",
            "signing_key": {"name": name, "public": ed25519_public_b64(self.keys[node][name])},
            "sealing_key": x25519_public_b64(self.sealing[node]),
            "token_key": es256_public_jwk(self.token[node], f"{node}:t1"),
        }

    def signed(self, payload: dict[str, Any], roots: list[Ed25519PrivateKey] | None = None) -> mf.Manifest:
        m = mf.unsigned(payload)
        for r in roots if roots is not None else self.roots:
            m = mf.sign_as_previous_root(m, r)
        return m

    def replica(self, limits: Limits = Limits()) -> Replica:
        return Replica(MemoryState(), self.manifest, limits=limits)

    def key(self, node: str, name: str = "k1") -> Ed25519PrivateKey:
        return self.keys[node][name]

    def new_key(self, node: str, name: str) -> str:
        k = Ed25519PrivateKey.generate()
        self.keys[node][name] = k
        return ed25519_public_b64(k)

    def forge(
        self,
        node: str,
        *,
        seq: int,
        prev: str | None,
        hlc: str,
        ops: list[dict[str, Any]],
        key: Ed25519PrivateKey | None = None,
        keyid: str | None = None,
        manifest: int | None = None,
        origin: str | None = None,
        author: str = "test@example.org",
    ) -> bytes:
        """Sign a change-set by hand (any key, any fields) — for the refusal tests."""
        payload = csmod.build_payload(
            origin=origin or node,
            seq=seq,
            prev=prev,
            hlc=hlc,
            manifest=manifest or self.manifest.version,
            author=author,
            ops=ops,
        )
        return csmod.sign(payload, keyid=keyid or f"{node}:k1", key=key or self.key(node))


def edit(rep: Replica, fed: Fed, node: str, ops: list[dict[str, Any]], *, t: int = T0, name: str = "k1"):
    return rep.edit(ops, me=node, key=fed.key(node, name), author=f"staff@{node}", now_ms=t)


def edit_unchecked(rep: Replica, fed: Fed, node: str, ops: list[dict[str, Any]], *, t: int = T0, name: str = "k1"):
    """Sign like a broken or hostile origin that skips the origin's checks, then apply: peers' refusals."""
    from pocsync.core import hlc as hlcmod

    seq, prev = rep.next_position(node)
    hlc = hlcmod.next_hlc(rep.state.max_hlc(), t)
    ops = [rep._with_holder_epoch(op, node, hlc) for op in ops]
    data = fed.forge(
        node,
        seq=seq,
        prev=prev,
        hlc=hlc,
        ops=ops,
        key=fed.key(node, name),
        keyid=f"{node}:{name}",
        author=f"staff@{node}",
    )
    return rep.receive(data, now_ms=t)


def edit_or_force(rep: Replica, fed: Fed, node: str, ops: list[dict[str, Any]], *, t: int = T0, name: str = "k1"):
    """``edit``; when the origin refuses to sign (an op peers would refuse), sign it as a hostile origin would."""
    from pocsync.errors import EntryError

    try:
        out = edit(rep, fed, node, ops, t=t, name=name)
    except EntryError as exc:
        if not exc.detail.get("refusals"):
            raise
        return edit_unchecked(rep, fed, node, ops, t=t, name=name)
    assert not out.refused, "the origin signed an op it refuses on receipt"
    return out


def put(key: str, **over: Any) -> dict[str, Any]:
    return {"op": "put", "key": key, "entry": entry(key, full=True, **over)}


def digest(rep: Replica) -> str:
    return rep.state.digest()  # type: ignore[attr-defined]
