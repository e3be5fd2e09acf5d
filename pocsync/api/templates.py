"""Communication templates for PoCs (issue 17, PROTOCOL.md §18): read-only, PoC tokens only.

* ``GET /v1/templates`` — ``{"templates": [document + origin, hlc, cs_id, index]}``, the effective
  version of each template, sorted by id.
* ``GET /v1/templates/{id}`` — one of them, or 404.

Templates come from the federation and are untrusted: the page renders every field as text.  Reads are
audited like every directory read; operator tokens (scope ``health``) are refused.
"""

from __future__ import annotations

from aiohttp import web

from pocsync import tokens
from pocsync.api.directory import _audit, reader
from pocsync.api.problems import problem
from pocsync.core.templates import ID_RE
from pocsync.live.runtime import RUNTIME
from pocsync.store import Store


@reader
async def list_templates(request: web.Request, claims: tokens.Claims) -> web.Response:
    rows = await request.app[RUNTIME].worker.run(Store.templates)
    await _audit(request, claims, "templates.list", "*", "ok", f"{len(rows)} templates")
    return web.json_response({"templates": rows})


@reader
async def get_template(request: web.Request, claims: tokens.Claims) -> web.Response:
    tid = request.match_info["id"]
    if not ID_RE.match(tid):
        return problem(400, "bad request", f"a template id matches {ID_RE.pattern}", reason="bad_request")
    row = await request.app[RUNTIME].worker.run(Store.template, tid)
    if row is None:
        await _audit(request, claims, "templates.get", tid, "not_found")
        return problem(404, "not found", f"no template {tid!r} in the federation", reason="not_found")
    await _audit(request, claims, "templates.get", tid, "ok")
    return web.json_response(row)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/templates", list_templates)
    app.router.add_get("/v1/templates/{id}", get_template)
