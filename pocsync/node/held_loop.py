"""The notifying node's part in held contact changes (PROTOCOL.md §16, ADR 29).

``pocsync-held`` (only at a notifying node: ``[held] notify = "auto"`` means a node of role ``un``):
every ``interval_seconds`` it reads the held changes of the view and

1. for a pending change by another origin that has no notice yet: mails the **previous** channels (the
   emails of the last winning put it was judged against) and the same State's other PoC, each with its
   own single-use objection link (a random 256-bit token; only its SHA-256 is stored), saying that a
   change is pending and when it takes effect at the earliest — never the new channels; then, once the
   relay accepted at least one recipient, signs the ``notice`` op.  Nothing accepted: no notice (the
   hold does not start), retried later;
2. for a pending change whose notice is older than the hold: signs the ``release`` op.

The mail and the notice are idempotent across restarts: links already mailed for a change mean "sign
the notice", not "mail again".
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from pocsync import mail
from pocsync.core import held, model
from pocsync.directory import campaigns
from pocsync.errors import MailError, PocsyncError
from pocsync.live.actions import sign
from pocsync.live.runtime import RUNTIME, event
from pocsync.store import Store, queries
from pocsync.tokens import token_hash

log = logging.getLogger("pocsync.held")
RETRY_SECONDS = 60  # after a failed mail, before the next try for the same change


def notifies(rt: Any, manifest: Any) -> bool:
    mode = rt.cfg.held.notify
    if mode == "auto":
        node = manifest.nodes.get(rt.me)
        return node is not None and bool(node.role == "un")
    return bool(mode == "yes")


def _emails(entry: dict[str, Any] | None) -> list[str]:
    out = []
    for e in (entry or {}).get("emails") or []:
        if isinstance(e, str):
            try:
                out.append(mail.check_address(e))
            except MailError:
                continue
    return out


def other_kind(key: str) -> str:
    state, kind = model.parse_key(key)
    return f"{state}/{'technical' if kind == 'diplomatic' else 'diplomatic'}"


_NOTICE = {
    "en": {
        "previous": "you are listed as the current contact of this entry",
        "other": "you are listed as the other point of contact of the same State ({other})",
        "none": "contact details",
        "subject": "Pending change of the PoC directory entry {key}",
        "body": (
            "A change to the directory entry {key} ({fields}) was proposed by the {origin} directory "
            "at {proposed}.\n\n"
            "It takes effect at the earliest at {earliest} (a hold of {hold} seconds), unless "
            "somebody objects before then.\n\n"
            "You receive this message because {why}. It does not show the new details.\n\n"
            "If you did not expect this change, object here (the link works once; the page asks you to confirm):\n"
            "{link}\n\n"
            "An objection cancels the change in every directory and alerts their operators.\n"
        ),
    },
    "fr": {
        "previous": "vous êtes inscrit comme contact actuel de cette fiche",
        "other": "vous êtes inscrit comme l'autre point de contact du même État ({other})",
        "none": "coordonnées",
        "subject": "Modification en attente de la fiche {key} de l'annuaire des points de contact",
        "body": (
            "Une modification de la fiche {key} ({fields}) a été proposée par l'annuaire {origin} "
            "le {proposed}.\n\n"
            "Elle prend effet au plus tôt le {earliest} (un délai de {hold} secondes), sauf si "
            "quelqu'un s'y oppose d'ici là.\n\n"
            "Vous recevez ce message parce que {why}. Il ne montre pas les nouvelles coordonnées.\n\n"
            "Si vous n'attendiez pas cette modification, opposez-vous ici (le lien ne sert qu'une fois ; "
            "la page vous demande de confirmer) :\n"
            "{link}\n\n"
            "Une opposition annule la modification dans tous les annuaires et alerte leurs opérateurs.\n"
        ),
    },
    "es": {
        "previous": "figura como contacto actual de esta ficha",
        "other": "figura como el otro punto de contacto del mismo Estado ({other})",
        "none": "datos de contacto",
        "subject": "Cambio pendiente de la ficha {key} del directorio de puntos de contacto",
        "body": (
            "El directorio {origin} propuso el {proposed} un cambio de la ficha {key} ({fields}).\n\n"
            "Entra en vigor como muy pronto el {earliest} (un plazo de {hold} segundos), salvo que "
            "alguien se oponga antes.\n\n"
            "Recibe este mensaje porque {why}. No muestra los nuevos datos.\n\n"
            "Si no esperaba este cambio, opóngase aquí (el enlace sirve una sola vez; la página le pide "
            "confirmación):\n"
            "{link}\n\n"
            "Una objeción anula el cambio en todos los directorios y alerta a sus operadores.\n"
        ),
    },
}


def message_text(
    row: dict[str, Any], *, link: str, earliest_ms: int, hold_s: int, role: str, language: str = "en"
) -> tuple[str, str]:
    """(subject, body) of a notice, in ``language`` (en, fr, es): what is pending and when; never the new values."""
    words = _NOTICE.get(language, _NOTICE["en"])
    key = row["key"]
    fields = ", ".join(row["fields"]) or words["none"]
    why = words["previous"] if role == "previous" else words["other"].format(other=other_kind(key))
    subject = words["subject"].format(key=key)
    body = words["body"].format(
        key=key,
        fields=fields,
        origin=row["origin"],
        proposed=held.iso(held.ms(row["hlc"])),
        earliest=held.iso(earliest_ms),
        hold=hold_s,
        why=why,
        link=link,
    )
    return subject, body


def notice_recipients(previous: dict[str, Any] | None, other: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(address, role, language) of each notice: the previous version's mailboxes, then the State's other PoC's
    (each once), each in the first language (en, fr, es) of the entry that lists it."""
    out = [(a, "previous", campaigns.language_of(previous or {})) for a in _emails(previous)]
    seen = {a.lower() for a, _, _ in out}
    out += [(a, "other", campaigns.language_of(other or {})) for a in _emails(other) if a.lower() not in seen]
    return out


async def notify_one(rt: Any, row: dict[str, Any], policy: held.Policy, now_s: float) -> bool:
    """Mail the previous channels and the other PoC, then sign the notice. True when the notice was signed."""
    settings = rt.cfg.smtp
    ref, key = row["put"], row["key"]
    mailed = await rt.worker.run(lambda s: s.held_links_of(ref))
    if not mailed:
        if settings is None:
            rt.counters["held_notice_failed:no_smtp"] += 1
            log.warning("held change %s of %s: no [smtp] relay configured, cannot mail the notice", ref, key)
            return False
        other = await rt.worker.run(Store.entry, other_kind(key))
        recipients = notice_recipients(row["previous"], other["entry"] if other else None)
        if not recipients:
            rt.counters["held_notice_failed:no_address"] += 1
            log.warning(
                "held change %s of %s: the previous entry and the other PoC list no mailbox; an approval is needed",
                ref,
                key,
            )
            return False
        earliest = int(now_s * 1000) + policy.hold_ms
        if row.get("takes_effect_ms") is not None:  # another node's notice started the hold already
            earliest = min(earliest, row["takes_effect_ms"])
        base = rt.cfg.api.public_url.rstrip("/")
        accepted = 0
        for addr, role, lang in recipients:
            token = secrets.token_urlsafe(32)  # 256 bits
            subject, body = message_text(
                row,
                link=f"{base}/held/object?token={token}",
                earliest_ms=earliest,
                hold_s=policy.hold_ms // 1000,
                role=role,
                language=lang,
            )
            try:
                msg = mail.build_message(settings, to=[addr], subject=subject, body=body, language=lang)
                await rt.worker.run(lambda s, h=token_hash(token): s.add_held_link(h, ref, key))  # noqa: B008 (bound now, on purpose)
                res = await mail.send(settings, msg)
            except MailError as exc:
                rt.counters[f"held_notice_mail_failed:{exc.reason}"] += 1
                log.warning("held change %s of %s: a notice mail failed (%s)", ref, key, exc.reason)
                continue
            accepted += len(res.accepted)
            rt.counters["held_notice_mails"] += len(res.accepted)
        if not accepted:
            await rt.worker.run(lambda s: queries.forget_held_link(s.conn, ref))
            return False
    try:
        await sign(rt, [{"op": "notice", "key": key, "put": ref}], author="held-changes notifier")
    except PocsyncError as exc:
        log.warning("held change %s of %s: notice not signed: %s: %s", ref, key, exc.reason, exc.message)
        return False
    event("held_notice", "held change %s of %s: notice mailed and signed", ref, key, key=key, put=ref)
    return True


def next_step(row: dict[str, Any], *, me: str, hold_ms: int, now_ms: int) -> str | None:
    """What this notifying node does for a pending change: ``notify``, ``release`` or nothing.

    Only its **own** notice counts here. A notice signed by any other node starts the hold for the
    merge, but that node may have mailed nobody (a node colluding with the origin): this node still
    mails the previous channels and signs its own notice, and releases only once the hold has passed
    since its own notice, so that the previous holder always had the whole hold to object.
    """
    mine = [h["hlc"] for h in row.get("holds") or [] if h.get("op") == "notice" and h.get("origin") == me]
    if not mine:
        return "notify"
    if row.get("takes_effect_ms") is not None and held.ms(min(mine)) + hold_ms <= now_ms:
        return "release"
    return None


async def round_(rt: Any, retry_at: dict[str, float]) -> None:
    m = await rt.manifest()
    policy = held.policy_of(m)
    if policy is None or not notifies(rt, m):
        return
    rows = await rt.worker.run(lambda s: s.held_changes(with_entries=True))
    now = time.time()
    for row in rows:
        if row["status"] != "pending" or row["origin"] == rt.me:
            continue
        ref = row["put"]
        step = next_step(row, me=rt.me, hold_ms=policy.hold_ms, now_ms=int(now * 1000))
        if step == "notify":
            if retry_at.get(ref, 0) > now:
                continue
            if not await notify_one(rt, row, policy, now):
                retry_at[ref] = now + RETRY_SECONDS
        elif step == "release":
            try:
                await sign(rt, [{"op": "release", "key": row["key"], "put": ref}], author="held-changes notifier")
                event(
                    "held_release",
                    "held change %s of %s released after the hold",
                    ref,
                    row["key"],
                    key=row["key"],
                    put=ref,
                )
            except PocsyncError as exc:
                log.warning(
                    "held change %s of %s: release not signed: %s: %s", ref, row["key"], exc.reason, exc.message
                )


async def held_loop(app: web.Application) -> None:
    rt = app[RUNTIME]
    retry_at: dict[str, float] = {}
    while True:
        try:
            await round_(rt, retry_at)
        except asyncio.CancelledError:
            raise
        except PocsyncError as exc:
            log.warning("held-changes round failed: %s: %s", exc.reason, exc.message)
        await asyncio.sleep(rt.cfg.held.interval_seconds)
