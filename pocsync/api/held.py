"""Held contact changes on the web (PROTOCOL.md §16, ADRs 29-30).

* ``GET /held/object?token=…`` — the page a notice's link opens: what is pending (key, fields, when) and
  one POST button; it changes nothing (mail scanners follow links).  ``POST /held/object`` (form field
  ``token``) — records the objection: this node signs an ``object`` op; the link is single-use.  Both
  answer with ``Referrer-Policy: no-referrer``, a strict CSP and no caching; they are rate-limited per
  client address; the token travels in the query string or the form body, which the logs redact, and
  only its SHA-256 is stored.
* ``GET /v1/held[?key=STATE/kind]`` — for PoCs (directory token): the held changes, with status, the
  names of the fields that change and when each takes effect — never the new values (ADR 30).
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from pocsync.api.auth import requires
from pocsync.api.peer import RateLimiter
from pocsync.api.problems import problem
from pocsync.core import held, model
from pocsync.errors import EntryError, PocsyncError
from pocsync.live.actions import sign
from pocsync.live.runtime import RUNTIME
from pocsync.tokens import Claims, token_hash

LIMITER = web.AppKey("held_object_limiter", RateLimiter)
MAX_TOKEN = 128
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
}


def _page(
    title: str,
    paragraphs: list[str],
    *,
    form_token: str | None = None,
    status: int = 200,
    translated: dict[str, str] | None = None,
) -> web.Response:
    """A one-purpose page in English, with ``translated`` (language -> one paragraph) in French and Spanish after it,
    as the acknowledgement page does: the reader may be a PoC of any language, and no script picks one."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    body += "".join(f'<p lang="{lang}">{html.escape(t)}</p>' for lang, t in (translated or {}).items())
    if form_token is not None:
        body += (
            '<form method="post" action="/held/object">'
            f'<input type="hidden" name="token" value="{html.escape(form_token, quote=True)}">'
            '<button type="submit">Object to this change / S’opposer à cette modification / '
            "Oponerse a este cambio</button></form>"
        )
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html", status=status, headers=HEADERS)


def _limited(request: web.Request) -> web.Response | None:
    """Only requests with a token that is not (or no longer) valid count against the client's budget: a
    flood of bad tokens from one address -- every client's, behind a TLS proxy -- must not stop the
    holder of a real link from objecting during the hold (that is what an attacker waiting for the
    release would do)."""
    if request.app[LIMITER].allow(request.remote or "?"):
        return None
    request.app[RUNTIME].counters["held_object_rate_limited"] += 1
    return _page("Too many requests", ["Please wait a minute and try again."], status=429)


async def _lookup(request: web.Request, token: object) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if not isinstance(token, str) or not 20 <= len(token) <= MAX_TOKEN:
        return None, None
    rt = request.app[RUNTIME]
    link = await rt.worker.run(lambda s: s.held_link(token_hash(token)))
    if link is None:
        return None, None
    rows = await rt.worker.run(lambda s: s.held_changes(link["key"]))
    return link, next((r for r in rows if r["put"] == link["put_ref"]), None)


GONE = ["This link is not valid, was used already, or the change it was about is no longer pending."]
GONE_TR = {
    "fr": "Ce lien n’est pas valable, a déjà servi, ou la modification dont il s’agit n’est plus en attente.",
    "es": "Este enlace no es válido, ya se usó, o el cambio al que se refiere ya no está pendiente.",
}


async def object_page(request: web.Request) -> web.Response:
    link, row = await _lookup(request, request.query.get("token"))
    if link is None or link["used_at"] or row is None or row["status"] != "pending":
        return _limited(request) or _page("Link not valid", GONE, status=404, translated=GONE_TR)
    at = held.iso(row["takes_effect_ms"]) if row["takes_effect_ms"] else None
    key, fields, origin = row["key"], ", ".join(row["fields"]), row["origin"]
    return _page(
        f"Pending change of {key}",
        [
            f"A change to the directory entry {key} ({fields}) was proposed by the "
            f"{origin} directory. It takes effect at {at or 'after the hold period'} unless somebody objects.",
            "If you did not expect this change, object to it: the change is then cancelled in every directory and "
            "their operators are alerted. This link works once.",
        ],
        form_token=request.query.get("token"),
        translated={
            "fr": f"Une modification de la fiche {key} ({fields}) a été proposée par l’annuaire {origin}. Elle prend effet "
            f"{'le ' + at if at else 'après le délai de retenue'} sauf opposition. Si vous ne l’attendiez pas, "
            "opposez-vous : elle est alors annulée dans tous les annuaires et leurs opérateurs sont alertés. Ce lien "
            "ne sert qu’une fois.",
            "es": f"El directorio {origin} propuso un cambio de la ficha {key} ({fields}). Entra en vigor "
            f"{'el ' + at if at else 'tras el plazo de retención'} salvo objeción. Si no lo esperaba, opóngase: el "
            "cambio se anula entonces en todos los directorios y se alerta a sus operadores. Este enlace sirve una "
            "sola vez.",
        },
    )


async def object_post(request: web.Request) -> web.Response:
    if (request.content_length or 0) > 4096:
        return _limited(request) or _page("Request too large", ["The form is too large."], status=413)
    if request.content_type != "application/x-www-form-urlencoded":
        return _limited(request) or _page("Link not valid", GONE, status=404, translated=GONE_TR)
    try:
        form = await request.post()
    except ValueError:
        return _limited(request) or _page("Link not valid", GONE, status=404, translated=GONE_TR)
    token = form.get("token")
    link, row = await _lookup(request, token)
    if link is None or link["used_at"] or row is None or row["status"] != "pending":
        return _limited(request) or _page("Link not valid", GONE, status=404, translated=GONE_TR)
    rt = request.app[RUNTIME]
    if not await rt.worker.run(lambda s: s.use_held_link(link["token_hash"])):
        return _page("Link not valid", GONE, status=404, translated=GONE_TR)
    try:
        await sign(
            rt, [{"op": "object", "key": row["key"], "put": row["put"]}], author="objection through a notice link"
        )
    except (EntryError, PocsyncError) as exc:
        rt.counters[f"held_object_failed:{exc.reason}"] += 1
        return _page(
            "Objection not recorded",
            ["The objection could not be recorded; please contact the directory's secretariat."],
            status=503,
        )
    rt.counters["held_objections"] += 1
    await rt.worker.run(
        lambda s: s.audit(actor="notice link", action="held.object", target=row["key"], result="ok", detail=row["put"])
    )
    return _page(
        "Objection recorded",
        [
            f"The pending change of {row['key']} is cancelled in every directory, and "
            "their operators are alerted. Thank you."
        ],
        translated={
            "fr": f"Opposition enregistrée : la modification de {row['key']} est annulée dans tous les annuaires, et "
            "leurs opérateurs sont alertés. Merci.",
            "es": f"Objeción registrada: el cambio de {row['key']} se anula en todos los directorios y se alerta a sus "
            "operadores. Gracias.",
        },
    )


@requires("directory")
async def list_held(request: web.Request, claims: Claims) -> web.Response:
    rt = request.app[RUNTIME]
    key = request.query.get("key")
    if key is not None:
        try:
            model.parse_key(key)
        except EntryError as exc:
            return problem(400, "bad key", exc.message, reason="bad_key")
    rows = await rt.worker.run(lambda s: s.held_changes(key))
    return web.json_response({"held": [public(r) for r in rows]})


def public(row: dict[str, Any]) -> dict[str, Any]:
    """What a PoC sees of a held change: never the new (or old) values."""
    return {
        "key": row["key"],
        "status": row["status"],
        "origin": row["origin"],
        "proposed": row["hlc"],
        "fields": row["fields"],
        "takes_effect_ms": row["takes_effect_ms"],
        "takes_effect": row["takes_effect"],
        "notice": row["notice"]["hlc"] if row["notice"] else None,
        "objected": row["objection"]["hlc"] if row["objection"] else None,
    }


def add_routes(app: web.Application, per_minute: int) -> None:
    limiter = RateLimiter(1)
    limiter.rate, limiter.burst = per_minute / 60.0, float(per_minute)
    app[LIMITER] = limiter
    app.router.add_get("/held/object", object_page)
    app.router.add_post("/held/object", object_post)
    app.router.add_get("/v1/held", list_held)
