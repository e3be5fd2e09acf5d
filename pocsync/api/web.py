"""The PoC web page (``/``) and the operator dashboard (``/dashboard``): static files from the package.

No asset comes from outside the node; a strict Content-Security-Policy says so to the browser.
The pages hold no data: they fetch it from the API with the HttpOnly session cookie.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
# The vendored OpenPGP.js is ES modules (.mjs): browsers run a module only when served as JavaScript, and older
# Pythons' mimetypes tables lack .mjs.
mimetypes.add_type("text/javascript", ".mjs")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _page(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(
            STATIC / name,
            headers={"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"},
        )

    return handler


async def _favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask for /favicon.ico on their own; answering it keeps their consoles free of 404s."""
    return web.FileResponse(
        STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/favicon.ico", _favicon)
    app.router.add_get("/dashboard", _page("dashboard.html"))
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
