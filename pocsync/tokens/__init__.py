"""PoC and operator tokens (docs/ARCHITECTURE.md, docs/SECURITY.md): ES256 JWTs issued by a member node's token key.

Verification, in order: the signature, with the issuer's key from the manifest, never from the token
(pocsync/tokens/verify.py: size cap, embedded keys and any ``alg`` but ES256 refused, required claims);
then what depends on the directory (:func:`check_subject`).  For scope ``directory``: the issuer's scope
(its latest scope step) must cover the subject's State, and the subject must be a live entry whose
holder epoch the token does not predate — so a replaced diplomat's token dies everywhere.  Scope
``health`` (operators) needs subject ``operator:<name>`` and reads health, metrics and the dashboard.
There is no shared secret to compare: every check is a public-key signature.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from jose import jwt

from pocsync.core import model
from pocsync.core.hlc import HLC, is_hlc
from pocsync.core.manifest import Manifest
from pocsync.errors import PocsyncError
from pocsync.tokens.verify import AUDIENCE as AUDIENCE
from pocsync.tokens.verify import FORBIDDEN_HEADERS as FORBIDDEN_HEADERS
from pocsync.tokens.verify import LEEWAY_S as LEEWAY_S
from pocsync.tokens.verify import MAX_JTI as MAX_JTI
from pocsync.tokens.verify import MAX_TOKEN as MAX_TOKEN
from pocsync.tokens.verify import Claims as Claims
from pocsync.tokens.verify import TokenError as TokenError
from pocsync.tokens.verify import unverified_parts as unverified_parts
from pocsync.tokens.verify import unverified_subject as unverified_subject
from pocsync.tokens.verify import verify_signature as verify_signature

SESSION_AUDIENCE = "pocsync-session:"  # + the node id: a session cookie is valid at the node that set it only
SCOPES = ("directory", "health")
MAX_TOTAL_LIFETIME_S = 30 * 86_400  # renewals never carry a token past auth_time + this (ADR 13)
SESSION_TTL_S = 8 * 3_600
LATEST = 2**53 - 1  # "the issuer's scope now": its latest scope step


def session_audience(node: str) -> str:
    return SESSION_AUDIENCE + node


def issue_token(
    *,
    issuer: str,
    kid: str,
    key: EllipticCurvePrivateKey,
    subject: str,
    scope: str,
    now_s: int,
    ttl_s: int,
    now_ms: int | None = None,
    auth_time: int | None = None,
    audience: str = AUDIENCE,
    exp: int | None = None,
    parent: str | None = None,
) -> str:
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {SCOPES}", reason="bad_scope")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if now_ms is None or now_ms // 1000 != now_s:
        real = time.time_ns() // 1_000_000
        now_ms = real if real // 1000 == now_s else now_s * 1000
    ms = now_ms
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now_s,
        "iat_ms": ms,
        "exp": exp if exp is not None else now_s + ttl_s,
        "auth_time": auth_time if auth_time else now_s,
        "jti": secrets.token_urlsafe(16),
        "scope": scope,
    }
    if parent:
        claims["parent_jti"] = parent  # revoking the parent revokes this session too (ADR 13)
    token: str = jwt.encode(claims, pem.decode(), algorithm="ES256", headers={"kid": kid, "typ": "JWT"})
    return token


def check_issuer_scope(manifest: Manifest, issuer: str, state: str, *, session: bool = False, hint: str = "") -> None:
    """The issuer-scope rule, for issuing, renewing and verifying a PoC token: ``issuer`` is a member whose
    scope (its latest scope step) covers ``state``.  A ``session`` token is the node's own record of a
    sign-in whose token it checked (issuer scope included) and is valid at that node only: its node need
    not cover the State (a PoC may sign in at any node).  ``hint`` ends the message (what to do instead)."""
    node = manifest.node(issuer)
    if node is None or (not session and not node.covers(state, LATEST)):
        raise TokenError(f"{issuer} may not issue tokens for {state}{hint}", reason="issuer_out_of_scope")


@dataclass(frozen=True)
class SubjectState:
    """What the node's log says about a token's subject, for :func:`check_subject`."""

    entry: dict[str, Any] | None  # the live entry, or None
    dead_since: str | None = None  # hlc of the latest delete or withdrawal of the key by any origin
    revoked: bool = False  # the token's jti (or a session's parent_jti) is on this node's deny-list


def check_subject(c: Claims, *, manifest: Manifest, lookup_entry: Callable[[str], Any] | None) -> None:
    """The rules that depend on the directory: run on every request, never cached.

    ``lookup_entry(subject)`` returns the live entry (a dict) or a :class:`SubjectState`."""
    found = lookup_entry(c.subject) if lookup_entry is not None else None
    st = found if isinstance(found, SubjectState) else SubjectState(found)
    if st.revoked:
        raise TokenError("this token was signed out or renewed", reason="revoked")
    if c.scope == "health":
        if not c.subject.startswith("operator:"):
            raise TokenError("a health token's subject must be operator:<name>", reason="bad_scope")
        return
    if c.scope != "directory":
        raise TokenError(f"unknown scope {c.scope!r}", reason="bad_scope")
    try:
        state, _ = model.parse_key(c.subject)
    except PocsyncError:
        raise TokenError(f"subject {c.subject!r} is not an entry key", reason="bad_subject") from None
    session = c.audience.startswith(SESSION_AUDIENCE) and c.audience == session_audience(c.issuer)
    check_issuer_scope(manifest, c.issuer, state, session=session)
    if lookup_entry is not None:
        if st.entry is None:
            raise TokenError(f"{c.subject} is not a live entry of the directory", reason="subject_not_listed")
        # Compared in milliseconds, the precision of the hlc (ADR 13): a holder change, a delete or a
        # withdrawal at or after the token's issue time kills it, whatever the entry carries afterwards.
        epoch = st.entry.get("holder_epoch")
        if is_hlc(epoch) and HLC.parse(epoch).ms >= c.iat_ms:
            raise TokenError(f"the holder of {c.subject} changed after this token was issued", reason="holder_changed")
        if is_hlc(st.dead_since) and HLC.parse(st.dead_since).ms >= c.iat_ms:
            raise TokenError(
                f"{c.subject} was deleted or withdrawn after this token was issued", reason="holder_changed"
            )


def verify_session(token: str, *, node: str, manifest: Manifest, now_s: int) -> Claims:
    """A session cookie: a token this node issued for itself (audience ``pocsync-session:<node>``)."""
    c = verify_signature(token, manifest=manifest, now_s=now_s, audience=session_audience(node))
    if c.issuer != node:
        raise TokenError("a session cookie is valid only at the node that set it", reason="wrong_audience")
    return c


class TokenCache:
    """Caches verified signatures (by token hash and manifest version) for ``ttl_s``; the subject check
    (entry still live, holder unchanged) runs on every call, so a change of the entry is seen at once."""

    def __init__(self, ttl_s: float = 60.0, max_items: int = 10_000) -> None:
        self.ttl_s, self.max_items = ttl_s, max_items
        self._items: dict[tuple[str, int, str], tuple[float, Claims]] = {}

    def verify(
        self,
        token: str,
        *,
        manifest: Manifest,
        now_s: int,
        lookup_entry: Callable[[str], Any] | None = None,
        audience: str = AUDIENCE,
    ) -> Claims:
        if not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isascii():
            raise TokenError("token is not a compact JWS (three base64url parts)", reason="malformed")
        k = (hashlib.sha256(token.encode()).hexdigest(), manifest.version, audience)
        hit = self._items.get(k)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s and now_s < hit[1].exp:
            c = hit[1]
        else:
            c = verify_signature(token, manifest=manifest, now_s=now_s, audience=audience)
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[k] = (time.monotonic(), c)
        check_subject(c, manifest=manifest, lookup_entry=lookup_entry)
        return c


def renew(
    c: Claims,
    *,
    issuer: str,
    kid: str,
    key: EllipticCurvePrivateKey,
    manifest: Manifest,
    now_s: int,
    ttl_s: int,
    audience: str = AUDIENCE,
    max_total_s: int = MAX_TOTAL_LIFETIME_S,
) -> str:
    """A fresh token for the holder of verified claims ``c``, issued by this node (any member may renew).

    The chain of renewals keeps the first token's ``auth_time``: no renewal reaches past
    ``auth_time + max_total_s`` (ADR 13); the caller revokes the old token."""
    limit = c.auth_time + max_total_s
    if now_s >= limit - 60:
        raise TokenError(
            "this token's renewals reached their maximum total lifetime; ask your secretariat for a new token",
            reason="renewal_limit",
        )
    if c.scope == "directory":
        state, _ = model.parse_key(c.subject)
        check_issuer_scope(manifest, issuer, state, hint="; renew at a node whose scope covers it")
    return issue_token(
        issuer=issuer,
        kid=kid,
        key=key,
        subject=c.subject,
        scope=c.scope,
        now_s=now_s,
        ttl_s=ttl_s,
        auth_time=c.auth_time,
        audience=audience,
        exp=min(now_s + ttl_s, limit),
    )


def token_hash(token: str) -> str:
    """The SHA-256 of a token, as held-change objections record who objected (never the token itself)."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
