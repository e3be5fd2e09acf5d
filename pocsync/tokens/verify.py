"""Reading and verifying a token's signature: the checks that need only the token and the manifest.

In order: cap the size; read the header without trusting it and refuse embedded keys (``jwk``, ``jku``,
``x5u``, ``x5c``, ``crit``) and any ``alg`` but ES256; read ``iss`` only to find the issuer among the
manifest's members and ``kid`` among its token keys; verify with python-jose, passing ``algorithms=["ES256"]``
and the key from the manifest (never from the token); require ``aud``, ``exp``, ``iat``, ``iss``, ``sub``,
``jti``, ``scope``.  What depends on the directory (issuer scope, live subject) is :func:`pocsync.tokens.check_subject`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError, JWTError

from pocsync.core import jsonc
from pocsync.core.keys import es256_public_from_jwk
from pocsync.core.manifest import Manifest
from pocsync.errors import PocsyncError

AUDIENCE = "pocsync"
FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "x5t", "crit")
MAX_TOKEN = 8192
MAX_JTI = 200
LEEWAY_S = 60


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
    _check_header(header)
    iss, kid, public = _issuer_key(header, unverified, manifest)
    claims = _decode(token, public, audience=audience, issuer=iss)
    return _claims(claims, issuer=iss, kid=kid, audience=audience, now_s=now_s)


def _check_header(header: dict[str, Any]) -> None:
    """No key travels in the token, and the algorithm is pinned to ES256."""
    bad = [h for h in FORBIDDEN_HEADERS if h in header]
    if bad:
        raise TokenError(
            f"token header carries {', '.join(bad)}: keys are never taken from a token", reason="forbidden_header"
        )
    if header.get("alg") != "ES256":
        raise TokenError(f"token alg {header.get('alg')!r} refused; only ES256", reason="bad_alg")


def _issuer_key(header: dict[str, Any], unverified: dict[str, Any], manifest: Manifest) -> tuple[str, str, str]:
    """The issuer, the key id and the public key (PEM) to verify with: all from the manifest, found by the
    token's unverified ``iss`` and ``kid``."""
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
    return iss, kid, public


def _decode(token: str, public: str, *, audience: str, issuer: str) -> dict[str, Any]:
    """The signature checked by python-jose (ES256 only), with ``aud``, ``iss``, ``sub`` and ``jti``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=["ES256"],
            audience=audience,
            issuer=issuer,
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
    return claims


def _claims(claims: dict[str, Any], *, issuer: str, kid: str, audience: str, now_s: int) -> Claims:
    """The signed claims' types, sizes and times checked, as :class:`Claims`."""
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
    _check_times(iat=iat, exp=exp, nbf=nbf, now_s=now_s)
    if iat_ms is None or iat_ms // 1000 != iat:
        iat_ms = iat * 1000  # no (consistent) millisecond claim: the start of iat's second, the strict reading
    if auth_time is None or auth_time > iat:
        auth_time = iat
    return Claims(
        issuer=issuer,
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


def _check_times(*, iat: int, exp: int, nbf: int | None, now_s: int) -> None:
    """Not expired, not issued in the future, valid already (``LEEWAY_S`` of clock skew allowed)."""
    if now_s >= exp:
        raise TokenError("token expired", reason="expired")
    if iat > now_s + LEEWAY_S:
        raise TokenError("token issued in the future", reason="not_yet_valid")
    if nbf is not None and nbf > now_s + LEEWAY_S:
        raise TokenError("token is not valid yet (nbf)", reason="not_yet_valid")
