"""Exports of the merged directory: JSON, CSV (documented header) and vCard 4.0 (RFC 6350, via vobject).

Pure functions over view rows as ``Store.entries()`` returns them.  CSV cells that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``) are prefixed with ``'`` — except in
the ``phones`` column, whose E.164 numbers start with ``+`` by definition and are never formulas
once joined with ``; `` (documented in the header comment of docs/OPERATIONS.md).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any

import vobject

from pocsync.core.hlc import HLC, is_hlc

CSV_HEADER = ("key", "state", "kind", "organisation", "position", "person", "emails", "phones", "available_24_7",
              "timezone", "languages", "networks", "secure_channels", "notes", "extra", "origin", "hlc")
#: Entry fields with a column (or property) of their own; any other field travels in ``extra`` (a JSON object).
KNOWN = ("state", "kind", "organisation", "position", "person", "emails", "phones", "available_24_7", "timezone",
         "languages", "networks", "secure_channels", "notes", "holder_epoch")


def extra_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's fields that no column names (unknown fields kept for the round trip)."""
    return {k: v for k, v in entry.items() if k not in KNOWN}
LISTS = ("emails", "phones", "languages", "networks")
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def to_json(rows: list[dict[str, Any]]) -> bytes:
    doc = {"type": "pocsync.export/v1",
           "entries": [{"key": r["key"], "entry": r["entry"],
                        "provenance": {"origin": r["origin"], "hlc": r["hlc"], "cs_id": r["cs_id"],
                                       "author": r["author"]}} for r in rows]}
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")


def _needs_json(items: list[Any]) -> bool:
    """A list whose items could not be told apart once joined with ``; `` is written as a JSON list."""
    return any(";" in str(x) or str(x) != str(x).strip() for x in items) or bool(items) and str(items[0]).startswith("[")


def _cell(col: str, value: Any) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif col in LISTS and isinstance(value, list) and not _needs_json(value):
        text = "; ".join(map(str, value))
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    if col != "phones" and (text.startswith(FORMULA) or text[:1] == "'" and text[1:2] in (*FORMULA, "'")):
        text = "'" + text  # a formula is guarded; a leading ' the reader would take for a guard is kept
    return text


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in rows:
        e = r["entry"]
        values = {**e, "key": r["key"], "origin": r["origin"], "hlc": r["hlc"], "extra": extra_fields(e) or None}
        w.writerow([_cell(c, values.get(c)) for c in CSV_HEADER])
    return out.getvalue()


def _rev(hlc: str) -> str:
    ms = HLC.parse(hlc).ms if is_hlc(hlc) else 0
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def to_vcard(rows: list[dict[str, Any]]) -> str:
    cards = []
    for r in rows:
        e = r["entry"]
        c = vobject.vCard()
        c.add("version").value = "4.0"
        person = e.get("person")
        c.add("fn").value = person or " — ".join(x for x in (e.get("organisation"), e.get("position")) if x)
        if person:
            parts = person.split(" ")
            c.add("n").value = vobject.vcard.Name(family=parts[-1], given=" ".join(parts[:-1]))
        c.add("kind").value = "individual" if person else "org"
        c.add("org").value = [e.get("organisation", "")]
        if e.get("position"):
            c.add("title").value = e["position"]
        for addr in e.get("emails") or []:
            em = c.add("email")
            em.value, em.type_param = addr, "work"
        for num in e.get("phones") or []:
            t = c.add("tel")
            t.value = f"tel:{num}"
            t.params["VALUE"] = ["uri"]
        if e.get("timezone"):
            c.add("tz").value = e["timezone"]
        for i, lang in enumerate(e.get("languages") or [], start=1):
            ln = c.add("lang")
            ln.value = lang
            ln.params["PREF"] = [str(i)]
        if e.get("notes"):
            c.add("note").value = e["notes"]
        c.add("uid").value = f"urn:pocsync:{r['key']}"
        c.add("rev").value = _rev(r.get("hlc", ""))
        c.add("x-pocsync-key").value = r["key"]
        c.add("x-pocsync-kind").value = e.get("kind", "")
        c.add("x-pocsync-state").value = e.get("state", "")
        if isinstance(e.get("available_24_7"), bool):  # absent stays absent
            c.add("x-pocsync-24-7").value = "yes" if e["available_24_7"] else "no"
        if e.get("networks"):  # a network name holding ';' is kept whole: the list as JSON then
            nets = e["networks"]
            c.add("x-pocsync-networks").value = json.dumps(nets, ensure_ascii=False) if _needs_json(nets) \
                else ";".join(nets)
        for ch in e.get("secure_channels") or []:
            c.add("x-pocsync-secure-channel").value = json.dumps(ch, sort_keys=True, separators=(",", ":"))
        if extra_fields(e):
            c.add("x-pocsync-extra").value = json.dumps(extra_fields(e), sort_keys=True, separators=(",", ":"),
                                                        ensure_ascii=False)
        c.add("x-pocsync-origin").value = r.get("origin", "")
        cards.append(c.serialize())
    return "".join(cards)


def parse_vcards(text: str) -> list[dict[str, Any]]:
    """vCards written by :func:`to_vcard`, back into entry-like dicts."""
    out = []
    for c in vobject.readComponents(text):
        get = lambda name: getattr(c, name).value if hasattr(c, name) else None  # noqa: E731
        lst = lambda name: [x.value for x in c.contents.get(name, [])]  # noqa: E731
        e: dict[str, Any] = {
            "state": get("x_pocsync_state"), "kind": get("x_pocsync_kind"),
            "organisation": (get("org") or [""])[0], "emails": lst("email"),
            "phones": [v.removeprefix("tel:") for v in lst("tel")],
        }
        if get("x_pocsync_24_7") is not None:
            e["available_24_7"] = get("x_pocsync_24_7") == "yes"
        if get("kind") == "individual":
            e["person"] = get("fn")
        for src, dst in (("title", "position"), ("tz", "timezone"), ("note", "notes")):
            if get(src) is not None:
                e[dst] = get(src)
        langs = sorted(c.contents.get("lang", []), key=lambda x: int((x.params.get("PREF") or ["99"])[0]))
        if langs:
            e["languages"] = [x.value for x in langs]
        if get("x_pocsync_networks"):
            e["networks"] = get("x_pocsync_networks").split(";")
        chans = lst("x-pocsync-secure-channel")
        if chans:
            e["secure_channels"] = [json.loads(x) for x in chans]
        out.append({"key": get("x_pocsync_key"), "entry": {k: v for k, v in e.items() if v not in (None, [])}})
    return out
