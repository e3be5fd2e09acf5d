"""PoC and operator tokens (docs/ARCHITECTURE.md, docs/SECURITY.md): ES256 JWTs issued by a member node's token key.

Verification, in order: cap the size; read the header without trusting it and refuse embedded keys
(``jwk``, ``jku``, ``x5u``, ``x5c``, ``crit``) and any ``alg`` but ES256; read ``iss`` only to find the
issuer among the manifest's members and ``kid`` among its token keys; verify with python-jose, passing
``algorithms=["ES256"]`` and the key from the manifest (never from the token); require ``aud``,
``exp``, ``iat``, ``iss``, ``sub``, ``jti``, ``scope``.  For scope ``directory``: the issuer's scope
(its latest scope step) must cover the subject's State, and the subject must be a live entry whose
holder epoch the token does not predate — so a replaced diplomat's token dies everywhere.  Scope
``health`` (operators) needs subject ``operator:<name>`` and reads health, metrics and the dashboard.
There is no shared secret to compare: every check is a public-key signature.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError, JWTError

from pocsync.core import jsonc, model
from pocsync.core.hlc import HLC, is_hlc
from pocsync.core.keys import es256_public_from_jwk
from pocsync.core.manifest import Manifest
from pocsync.errors import PocsyncError

AUDIENCE = "pocsync"
SESSION_AUDIENCE = "pocsync-session:"  # + the node id: a session cookie is valid at the node that set it only
SCOPES = ("directory", "health")
MAX_TOTAL_LIFETIME_S = 30 * 86_400  # renewals never carry a token past auth_time + this (ADR 13)
SESSION_TTL_S = 8 * 3_600
FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "x5t", "crit")
MAX_TOKEN = 8192
MAX_JTI = 200
LEEWAY_S = 60
LATEST = 2**53 - 1  # "the issuer's scope now": its latest scope step


class TokenError(PocsyncError):
    reason = "bad_token"


@dataclass(frozen=True)
class Claims:
    issuer: str
    subject: str
    scope: str
    iat: int
    exp: int
    jti: str
    kid: str
    iat_ms: int = 0  # issue time in ms (claim ``iat_ms``; ``iat`` * 1000 for tokens without it)
    auth_time: int = 0  # when the chain of renewals began (claim ``auth_time``; ``iat`` without it)
    audience: str = AUDIENCE
    parent: str = ""  # a session token: the jti of the token it was opened with (claim ``parent_jti``)


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


def _b64json(part: str, what: str) -> dict[str, Any]:
    try:
        # strict JSON (PROTOCOL.md §2): no lone surrogate can reach a store lookup or the audit log
        value = jsonc.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, RecursionError, PocsyncError):
        raise TokenError(f"token {what} is not base64url JSON", reason="malformed") from None
    if not isinstance(value, dict):
        raise TokenError(f"token {what} is not a JSON object", reason="malformed")
    return value


_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, NOT verified: only to route verification (never trusted)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise TokenError(f"token longer than {MAX_TOKEN} bytes", reason="oversize")
    if not _TOKEN_RE.match(token):
        raise TokenError("token is not a compact JWS (three base64url parts)", reason="malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token is not a compact JWS", reason="malformed")
    return _b64json(parts[0], "header"), _b64json(parts[1], "claims")


def unverified_subject(token: str) -> str | None:
    try:
        sub = unverified_parts(token)[1].get("sub")
        return sub if isinstance(sub, str) else None
    except TokenError:
        return None


def verify_signature(token: str, *, manifest: Manifest, now_s: int, audience: str = AUDIENCE) -> Claims:
    """Total: any string gives Claims or a TokenError."""
    try:
        return _verify_signature(token, manifest=manifest, now_s=now_s, audience=audience)
    except PocsyncError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise TokenError(f"token is malformed ({type(exc).__name__})", reason="malformed") from None


def _int_claim(claims: dict[str, Any], name: str, *, required: bool) -> int | None:
    v = claims.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 2**53 - 1:
        raise TokenError(f"token claim {name} must be a non-negative integer", reason="missing_claim")
    return v


def _verify_signature(token: str, *, manifest: Manifest, now_s: int, audience: str) -> Claims:
    header, unverified = unverified_parts(token)
    bad = [h for h in FORBIDDEN_HEADERS if h in header]
    if bad:
        raise TokenError(
            f"token header carries {', '.join(bad)}: keys are never taken from a token", reason="forbidden_header"
        )
    if header.get("alg") != "ES256":
        raise TokenError(f"token alg {header.get('alg')!r} refused; only ES256", reason="bad_alg")
    iss = unverified.get("iss")
    node = manifest.node(iss) if isinstance(iss, str) else None
    if node is None or node.removed or not isinstance(iss, str):
        raise TokenError(f"issuer {iss!r} is not a member of manifest v{manifest.version}", reason="unknown_issuer")
    kid = header.get("kid")
    jwk = node.token_keys.get(kid) if isinstance(kid, str) else None
    if jwk is None or not isinstance(kid, str):
        raise TokenError(f"kid {kid!r} is not a token key of {iss}", reason="unknown_kid")
    public = (
        es256_public_from_jwk(jwk)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    try:
        claims = jwt.decode(
            token,
            public,
            algorithms=["ES256"],
            audience=audience,
            issuer=iss,
            # exp, iat and nbf are required and checked below against ``now_s`` (time is a
            # parameter); python-jose would compare them with its own clock ("require_exp"
            # turns "verify_exp" back on)
            options={
                "require_aud": True,
                "require_iss": True,
                "require_sub": True,
                "require_jti": True,
                # checked below, at our precision and leeway (nbf too: case 8)
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except JWTClaimsError as exc:
        msg = str(exc)
        reason = "wrong_audience" if "audience" in msg.lower() else "missing_claim"
        raise TokenError(f"token claims refused: {msg}", reason=reason) from None
    except ExpiredSignatureError:
        raise TokenError("token expired", reason="expired") from None
    except (JWTError, JOSEError) as exc:
        raise TokenError(f"token signature refused: {exc}", reason="bad_signature") from None
    iat, exp = _int_claim(claims, "iat", required=True), _int_claim(claims, "exp", required=True)
    nbf = _int_claim(claims, "nbf", required=False)
    iat_ms = _int_claim(claims, "iat_ms", required=False)
    auth_time = _int_claim(claims, "auth_time", required=False)
    if (
        not isinstance(claims.get("scope"), str)
        or not isinstance(claims.get("jti"), str)
        or not isinstance(claims.get("sub"), str)
    ):
        raise TokenError("token needs string sub, scope and jti claims", reason="missing_claim")
    if not 0 < len(claims["jti"]) <= MAX_JTI:  # the deny-list must find what it revoked
        raise TokenError(f"token jti must be 1 to {MAX_JTI} characters", reason="malformed")
    parent = claims.get("parent_jti", "")
    if not isinstance(parent, str) or len(parent) > MAX_JTI:
        raise TokenError(f"token parent_jti must be a string of at most {MAX_JTI} characters", reason="malformed")
    assert iat is not None and exp is not None
    if now_s >= exp:
        raise TokenError("token expired", reason="expired")
    if iat > now_s + LEEWAY_S:
        raise TokenError("token issued in the future", reason="not_yet_valid")
    if nbf is not None and nbf > now_s + LEEWAY_S:
        raise TokenError("token is not valid yet (nbf)", reason="not_yet_valid")
    if iat_ms is None or iat_ms // 1000 != iat:
        iat_ms = iat * 1000  # no (consistent) millisecond claim: the start of iat's second, the strict reading
    if auth_time is None or auth_time > iat:
        auth_time = iat
    return Claims(
        issuer=iss,
        subject=claims["sub"],
        scope=claims["scope"],
        iat=iat,
        exp=exp,
        jti=claims["jti"],
        kid=kid,
        iat_ms=iat_ms,
        auth_time=auth_time,
        audience=audience,
        parent=parent,
    )


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


def verify_token(
    token: str,
    *,
    manifest: Manifest,
    now_s: int,
    audience: str = AUDIENCE,
    lookup_entry: Callable[[str], dict[str, Any] | None] | None = None,
) -> Claims:
    c = verify_signature(token, manifest=manifest, now_s=now_s, audience=audience)
    check_subject(c, manifest=manifest, lookup_entry=lookup_entry)
    return c


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
