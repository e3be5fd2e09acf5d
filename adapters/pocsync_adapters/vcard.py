"""vCard 4.0 and 3.0 (vobject): cards written by ``pocsync export --format vcard``, or from a mail client.

Each card is parsed on its own (a broken card is reported by number, the others are read).
Record fields: ``org`` (first ORG component), ``title``, ``fn``, ``person`` (FN when KIND is
``individual``, or when a card without KIND names someone other than its ORG), ``email``,
``tel`` (``tel:`` URIs unwrapped), ``tz``, ``lang`` (in PREF order), ``note``, ``categories``,
``country`` (of the first ADR), ``uid``, and pocsync's own ``X-POCSYNC-*`` properties as
``state``, ``kind``, ``available_24_7``, ``networks``, ``secure_channels``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import vobject

from pocsync.directory import exports
from pocsync.directory.adapters import EXTRA, Mapping, Record
from pocsync.errors import SourceError

_BEGIN = re.compile(r"^BEGIN:VCARD\s*$", re.I | re.M)
DEFAULT_FIELDS = {
    "state": "state",
    "kind": "kind",
    "organisation": "org",
    "position": "title",
    "person": "person",
    "emails": "email",
    "phones": "tel",
    "available_24_7": "available_24_7",
    "timezone": "tz",
    "languages": "lang",
    "networks": "networks",
    "secure_channels": "secure_channels",
    "notes": "note",
}


def _text(v: Any) -> str | None:
    if isinstance(v, list):
        v = v[0] if v else None
    if v is None:
        return None
    return str(v).strip() or None


def _card_fields(c: Any) -> dict[str, Any]:
    def one(name: str) -> Any:
        items = c.contents.get(name)
        return items[0].value if items else None

    def many(name: str) -> list[Any]:
        return [x.value for x in c.contents.get(name, [])]

    raw: dict[str, Any] = {}
    org = one("org")
    raw["org"] = _text(org)
    for name in ("title", "fn", "tz", "note", "uid", "kind"):
        if one(name) is not None:
            raw[name] = _text(one(name))
    if isinstance(one("note"), str) and one("note").strip():
        raw["note"] = one("note")  # notes are kept as written (round trip)
    raw["email"] = [str(x).strip() for x in many("email") if str(x).strip()]
    raw["tel"] = [str(x).strip().removeprefix("tel:") for x in many("tel") if str(x).strip()]
    langs = sorted(c.contents.get("lang", []), key=lambda x: _pref(x))
    raw["lang"] = [str(x.value).strip() for x in langs if str(x.value).strip()]
    cats: list[str] = []
    for v in many("categories"):
        cats += [str(x).strip() for x in (v if isinstance(v, list) else str(v).split(","))]
    raw["categories"] = cats
    adr = one("adr")
    if adr is not None and getattr(adr, "country", None):
        raw["country"] = _text(adr.country)
    kind = (raw.get("kind") or "").lower()
    fn = raw.get("fn")
    org = str(raw.get("org") or "")
    if fn and (kind == "individual" or (not kind and not _names_org(str(fn), org))):
        raw["person"] = fn
    raw["state"] = _text(one("x-pocsync-state")) or raw.get("country")
    raw["kind"] = _text(one("x-pocsync-kind"))
    if one("x-pocsync-24-7") is not None:
        raw["available_24_7"] = _text(one("x-pocsync-24-7"))
    if one("x-pocsync-networks"):
        nets = str(one("x-pocsync-networks"))
        try:  # the export writes a JSON list when a network name holds ';'
            parsed = json.loads(nets) if nets.startswith("[") else None
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            raw["networks"] = parsed
        else:
            raw["networks"] = [x for x in nets.split(";") if x]
    raw["secure_channels"] = many("x-pocsync-secure-channel")
    if one("x-pocsync-extra"):
        try:
            extra = json.loads(str(one("x-pocsync-extra")))
        except ValueError:
            raise ValueError("X-POCSYNC-EXTRA is not JSON") from None
        if isinstance(extra, dict):
            raw[EXTRA] = extra
    return {k: v for k, v in raw.items() if v not in (None, [], "")}


def _pref(x: Any) -> int:
    try:
        return int((x.params.get("PREF") or ["99"])[0])
    except (ValueError, TypeError):
        return 99


def _names_org(fn: str, org: str) -> bool:
    """A card without KIND whose FN is its ORG, or a shorter or longer form of it (``Example CERT``
    for ``Example CERT (fictional)``), names the team, not a person."""
    a, b = " ".join(fn.split()).casefold(), " ".join(org.split()).casefold()
    return bool(a and b) and (a == b or a in b or b in a)


class VcardAdapter:
    name = "vcard"
    option_keys = ("encoding",)
    description = "vCard 4.0 / 3.0 (pocsync's own export, or cards from a mail client)"
    reads = "vCard 4.0 and 3.0 files (.vcf), one or many cards"
    writes = "vCard 4.0 with X-POCSYNC-* properties"
    default_mapping = Mapping(fields=dict(DEFAULT_FIELDS))

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        try:
            text = data.decode(str(mapping.options.get("encoding", "utf-8-sig")))
        except (UnicodeDecodeError, LookupError) as exc:
            raise SourceError(f"{source}: not text in the expected encoding: {exc}") from None
        starts = [m.start() for m in _BEGIN.finditer(text)]
        if not starts:
            raise SourceError(f"{source}: no vCard (no BEGIN:VCARD line)")
        for n, (a, b) in enumerate(zip(starts, [*starts[1:], len(text)]), start=1):
            ref = f"{source}:card {n}"
            try:
                card = vobject.readOne(text[a:b], validate=False)
                if card.name.upper() != "VCARD":
                    raise ValueError(f"a {card.name} component, not a VCARD")
                raw = _card_fields(card)
            except Exception as exc:  # vobject raises many types; each is this card's problem only
                yield Record(ref=ref, raw={}, error=f"not a valid vCard: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            yield Record(ref=ref, raw=raw, id=raw.get("uid"))

    def write(self, rows: list[dict[str, Any]]) -> bytes:
        return exports.to_vcard(rows).encode("utf-8")
