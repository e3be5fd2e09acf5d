"""Errors as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def problem(
    status: int, title: str, detail: str = "", *, reason: str = "", headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if reason:
        body["reason"] = reason
    return web.json_response(body, status=status, content_type="application/problem+json", headers=headers)
