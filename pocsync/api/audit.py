"""The audit log of PoC reads and tokens issued (docs/SECURITY.md): one row per request."""

from __future__ import annotations

from aiohttp import web

from pocsync import tokens
from pocsync.live import readcache
from pocsync.live.runtime import RUNTIME


async def audit(
    request: web.Request, claims: tokens.Claims, action: str, target: str, result: str, detail: str = ""
) -> None:
    """Every read is audited; the row is group-committed within AUDIT_WINDOW_S (ADR 21), never awaited here."""
    who = f"{claims.subject} (token {claims.jti[:8]} from {claims.issuer})"
    buf = request.app.get(readcache.AUDIT)
    if buf is not None:
        buf.add(actor=who, action=action, target=target, result=result, detail=detail)
        return
    rt = request.app[RUNTIME]
    await rt.worker.run(lambda s: s.audit(actor=who, action=action, target=target, result=result, detail=detail))
