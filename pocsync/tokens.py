"""PoC and operator tokens (DESIGN §6): ES256 JWTs issued by a member node's token key.

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
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

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
SCOPES = ("directory", "health")
FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "x5t", "crit")
MAX_TOKEN = 8192
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


def issue_token(*, issuer: str, kid: str, key: EllipticCurvePrivateKey, subject: str, scope: str, now_s: int,
                ttl_s: int) -> str:
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {SCOPES}", reason="bad_scope")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    claims = {"iss": issuer, "sub": subject, "aud": AUDIENCE, "iat": now_s, "exp": now_s + ttl_s,
              "jti": secrets.token_urlsafe(16), "scope": scope}
    return jwt.encode(claims, pem.decode(), algorithm="ES256", headers={"kid": kid, "typ": "JWT"})


def _b64json(part: str, what: str) -> dict[str, Any]:
    try:
        # strict JSON (PROTOCOL.md §2): no lone surrogate can reach a store lookup or the audit log
        value = jsonc.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, PocsyncError):
        raise TokenError(f"token {what} is not base64url JSON", reason="malformed") from None
    if not isinstance(value, dict):
        raise TokenError(f"token {what} is not a JSON object", reason="malformed")
    return value


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, NOT verified: only to route verification (never trusted)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise TokenError(f"token longer than {MAX_TOKEN} bytes", reason="oversize")
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
    header, unverified = unverified_parts(token)
    bad = [h for h in FORBIDDEN_HEADERS if h in header]
    if bad:
        raise TokenError(f"token header carries {', '.join(bad)}: keys are never taken from a token",
                         reason="forbidden_header")
    if header.get("alg") != "ES256":
        raise TokenError(f"token alg {header.get('alg')!r} refused; only ES256", reason="bad_alg")
    iss = unverified.get("iss")
    node = manifest.node(iss) if isinstance(iss, str) else None
    if node is None or node.removed:
        raise TokenError(f"issuer {iss!r} is not a member of manifest v{manifest.version}", reason="unknown_issuer")
    kid = header.get("kid")
    jwk = node.token_keys.get(kid) if isinstance(kid, str) else None
    if jwk is None:
        raise TokenError(f"kid {kid!r} is not a token key of {iss}", reason="unknown_kid")
    public = es256_public_from_jwk(jwk).public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    try:
        claims = jwt.decode(token, public, algorithms=["ES256"], audience=audience, issuer=iss,
                            options={"require_aud": True, "require_exp": True, "require_iat": True,
                                     "require_iss": True, "require_sub": True, "require_jti": True,
                                     "verify_exp": False, "verify_iat": False, "verify_nbf": False})
    except JWTClaimsError as exc:
        msg = str(exc)
        reason = "wrong_audience" if "audience" in msg.lower() else "missing_claim"
        raise TokenError(f"token claims refused: {msg}", reason=reason) from None
    except ExpiredSignatureError:
        raise TokenError("token expired", reason="expired") from None
    except (JWTError, JOSEError) as exc:
        raise TokenError(f"token signature refused: {exc}", reason="bad_signature") from None
    for name in ("iat", "exp"):
        if not isinstance(claims.get(name), int) or isinstance(claims.get(name), bool):
            raise TokenError(f"token claim {name} must be an integer", reason="missing_claim")
    if not isinstance(claims.get("scope"), str) or not isinstance(claims.get("jti"), str):
        raise TokenError("token needs string scope and jti claims", reason="missing_claim")
    if now_s >= claims["exp"]:
        raise TokenError("token expired", reason="expired")
    if claims["iat"] > now_s + LEEWAY_S:
        raise TokenError("token issued in the future", reason="not_yet_valid")
    return Claims(issuer=iss, subject=claims["sub"], scope=claims["scope"], iat=claims["iat"], exp=claims["exp"],
                  jti=claims["jti"], kid=kid)


def check_subject(c: Claims, *, manifest: Manifest, lookup_entry: Callable[[str], dict | None] | None) -> None:
    """The rules that depend on the directory: run on every request, never cached."""
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
    node = manifest.node(c.issuer)
    if node is None or not node.covers(state, LATEST):
        raise TokenError(f"{c.issuer} may not issue tokens for {state}", reason="issuer_out_of_scope")
    if lookup_entry is not None:
        entry = lookup_entry(c.subject)
        if entry is None:
            raise TokenError(f"{c.subject} is not a live entry of the directory", reason="subject_not_listed")
        epoch = entry.get("holder_epoch")
        # iat has one-second granularity: the holder changed after the token when its epoch falls in a
        # later second than iat (a change within the same second as issuance is not distinguished).
        if is_hlc(epoch) and HLC.parse(epoch).ms // 1000 > c.iat:
            raise TokenError(f"the holder of {c.subject} changed after this token was issued", reason="holder_changed")


def verify_token(token: str, *, manifest: Manifest, now_s: int, audience: str = AUDIENCE,
                 lookup_entry: Callable[[str], dict | None] | None = None) -> Claims:
    c = verify_signature(token, manifest=manifest, now_s=now_s, audience=audience)
    check_subject(c, manifest=manifest, lookup_entry=lookup_entry)
    return c


class TokenCache:
    """Caches verified signatures (by token hash and manifest version) for ``ttl_s``; the subject check
    (entry still live, holder unchanged) runs on every call, so a change of the entry is seen at once."""

    def __init__(self, ttl_s: float = 60.0, max_items: int = 10_000) -> None:
        self.ttl_s, self.max_items = ttl_s, max_items
        self._items: dict[tuple[str, int], tuple[float, Claims]] = {}

    def verify(self, token: str, *, manifest: Manifest, now_s: int,
               lookup_entry: Callable[[str], dict | None] | None = None) -> Claims:
        k = (hashlib.sha256(token.encode()).hexdigest(), manifest.version)
        hit = self._items.get(k)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s and now_s < hit[1].exp:
            c = hit[1]
        else:
            c = verify_signature(token, manifest=manifest, now_s=now_s)
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[k] = (time.monotonic(), c)
        check_subject(c, manifest=manifest, lookup_entry=lookup_entry)
        return c


def renew(c: Claims, *, issuer: str, kid: str, key: EllipticCurvePrivateKey, manifest: Manifest, now_s: int,
          ttl_s: int) -> str:
    """A fresh token for the holder of verified claims ``c``, issued by this node (any member may renew)."""
    if c.scope == "directory":
        state, _ = model.parse_key(c.subject)
        node = manifest.node(issuer)
        if node is None or not node.covers(state, LATEST):
            raise TokenError(f"{issuer} may not issue tokens for {state}; renew at a node whose scope covers it",
                             reason="issuer_out_of_scope")
    return issue_token(issuer=issuer, kid=kid, key=key, subject=c.subject, scope=c.scope, now_s=now_s, ttl_s=ttl_s)
