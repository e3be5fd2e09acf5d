"""Exports of the merged directory: JSON, CSV (documented header) and vCard 4.0 (RFC 6350, via vobject).

Pure functions over view rows as ``Store.entries()`` returns them.  Every field is untrusted, whatever
validation the origin ran (receivers do not validate: ADR 6), so every writer — these and the regional
adapters' writers — goes through the guards of this module (issue 11, cases 4 and 13):

* :func:`safe_text` — free text with the code points :mod:`pocsync.directory.freetext` forbids replaced by U+FFFD;
* :func:`safe_cell` — a spreadsheet cell: ``safe_text``, then a leading ``'`` when the cell could run as
  a formula (it starts, after any white space, with ``=``, ``+``, ``-``, ``@``, TAB or CR).  A ``phones``
  cell keeps its leading ``+`` only when every number in it is a valid E.164 number;
* :func:`safe_json` — JSON bytes whose raw C1, separator, bidi and surrogate code points are ``\\u``
  escapes (the same data when parsed).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import vobject

from pocsync.core.hlc import HLC, is_hlc
from pocsync.directory import freetext

CSV_HEADER = (
    "key",
    "state",
    "kind",
    "organisation",
    "position",
    "person",
    "emails",
    "phones",
    "available_24_7",
    "timezone",
    "languages",
    "networks",
    "secure_channels",
    "notes",
    "extra",
    "origin",
    "hlc",
    "last_modified",
    "last_verified",
    "last_confirmed",
)
#: Derived columns (issue 15, PROTOCOL.md §15.4): written from a row's ``freshness`` (RFC 3339 times, empty when
#: never), never read back by an import.
FRESHNESS = ("last_modified", "last_verified", "last_confirmed")
#: Entry fields with a column (or property) of their own; any other field travels in ``extra`` (a JSON object).
KNOWN = (
    "state",
    "kind",
    "organisation",
    "position",
    "person",
    "emails",
    "phones",
    "available_24_7",
    "timezone",
    "languages",
    "networks",
    "secure_channels",
    "notes",
    "holder_epoch",
)


def extra_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's fields that no column names (unknown fields kept for the round trip)."""
    return {k: v for k, v in entry.items() if k not in KNOWN}


LISTS = ("emails", "phones", "languages", "networks")
KEY_URI = "data:application/pgp-keys;base64,"  # vCard 4.0 KEY (RFC 6350 §6.8.1): an entry's public_key
FORMULA = ("=", "+", "-", "@", "\t", "\r")
E164_RE = re.compile(r"^\+[1-9][0-9]{1,14}$")
LIST_SEP = "; "
# what a spreadsheet does not show before a formula: any white space (LF in notes, U+3000, …) and the
# zero-width characters
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def needs_guard(text: str) -> bool:
    """Whether a spreadsheet could run ``text`` as a formula (it starts one after invisible characters)."""
    return text.lstrip().lstrip(_INVISIBLE).lstrip().startswith(FORMULA)


def safe_text(value: Any, *, field: str = "") -> str:
    """Any value as display text, with forbidden code points replaced (``notes`` keeps line feeds)."""
    text = value if isinstance(value, str) else str(value)
    return freetext.clean(text, multiline=field in freetext.MULTILINE_FIELDS)


def is_e164(number: object) -> bool:
    return isinstance(number, str) and E164_RE.match(number) is not None


def safe_cell(value: Any, *, column: str = "") -> str:
    """One spreadsheet cell (CSV, or any adapter writing a table) that no spreadsheet runs as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif column in LISTS and isinstance(value, list) and not _needs_json(value):
        text = LIST_SEP.join(safe_text(v, field=column) for v in value)
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    text = safe_text(text, field=column)
    if needs_guard(text):
        phones_ok = column == "phones" and isinstance(value, list) and value and all(is_e164(v) for v in value)
        if not phones_ok:
            text = "'" + text
    elif looks_guarded(text):  # a leading ' that a reader would take for the guard is guarded too: exact round trip
        text = "'" + text
    return text


def looks_guarded(text: str) -> bool:
    """Whether ``text`` reads as a guarded cell: ``'`` then a formula start (:func:`needs_guard`) or, after
    blanks and invisible characters, another ``'``."""
    if not text.startswith("'"):
        return False
    rest = text[1:]
    return needs_guard(rest) or rest.lstrip().lstrip(_INVISIBLE).lstrip().startswith("'")


def unguard(text: str) -> str:
    """Undo :func:`safe_cell`'s guard (what a reader of our CSV does): exactly one leading ``'`` goes."""
    return text[1:] if looks_guarded(text) else text


def safe_json(value: Any, **dumps: Any) -> bytes:
    return freetext.escape_json(json.dumps(value, ensure_ascii=False, **dumps)).encode("utf-8")


def to_json(rows: list[dict[str, Any]]) -> bytes:
    doc = {
        "type": "pocsync.export/v1",
        "entries": [
            {
                "key": r["key"],
                "entry": r["entry"],
                "provenance": {"origin": r["origin"], "hlc": r["hlc"], "cs_id": r["cs_id"], "author": r["author"]},
                **({f: r["freshness"].get(f) for f in FRESHNESS} if r.get("freshness") else {}),
            }
            for r in rows
        ],
    }
    return safe_json(doc, sort_keys=True, indent=1)


def _needs_json(items: list[Any]) -> bool:
    """A list whose items could not be told apart once joined with ``; `` is written as a JSON list."""
    return (
        any(";" in str(x) or str(x) != str(x).strip() for x in items) or bool(items) and str(items[0]).startswith("[")
    )


def _cell(col: str, value: Any) -> str:
    return safe_cell(value, column=col)


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in rows:
        e = r["entry"]
        values = {
            **e,
            "key": r["key"],
            "origin": r["origin"],
            "hlc": r["hlc"],
            "extra": extra_fields(e) or None,
            **{f: (r.get("freshness") or {}).get(f) for f in FRESHNESS},
        }
        w.writerow([_cell(c, values.get(c)) for c in CSV_HEADER])
    return out.getvalue()


def _rev(hlc: str) -> str:
    ms = HLC.parse(hlc).ms if is_hlc(hlc) else 0
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def safe_entry(value: Any, field: str = "") -> Any:
    """The entry with every string passed through :func:`safe_text` (lists and objects walked)."""
    if isinstance(value, str):
        return safe_text(value, field=field)
    if isinstance(value, list):
        return [safe_entry(v, field) for v in value]
    if isinstance(value, dict):
        return {safe_text(k): safe_entry(v, k if not field else field) for k, v in value.items()}
    return value


_safe_entry = safe_entry


def to_vcard(rows: list[dict[str, Any]]) -> str:
    cards = []
    for r in rows:
        e = _safe_entry(r["entry"])
        r = {**r, "key": safe_text(r["key"]), "origin": safe_text(r.get("origin", ""))}
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
            c.add("x-pocsync-networks").value = (
                json.dumps(nets, ensure_ascii=False) if _needs_json(nets) else ";".join(nets)
            )
        for ch in e.get("secure_channels") or []:
            c.add("x-pocsync-secure-channel").value = json.dumps(ch, sort_keys=True, separators=(",", ":"))
        raw_key = r["entry"].get("public_key")
        if isinstance(raw_key, str):  # any text from a peer: carried as a base64 data URI, never as text
            c.add("key").value = KEY_URI + base64.b64encode(raw_key.encode("utf-8")).decode("ascii")
        extra = extra_fields(e)  # public_key travels here too: readers of X-POCSYNC-EXTRA get it back whole
        if extra:
            c.add("x-pocsync-extra").value = json.dumps(
                extra, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
        c.add("x-pocsync-origin").value = r.get("origin", "")
        for f in FRESHNESS:  # derived (§15.4): RFC 3339 times, absent when never; parse_vcards ignores them
            when = (r.get("freshness") or {}).get(f)
            if when:
                c.add("x-pocsync-" + f.replace("_", "-")).value = safe_text(when)
        cards.append(c.serialize())
    return "".join(cards)


def parse_vcards(text: str) -> list[dict[str, Any]]:
    """vCards written by :func:`to_vcard`, back into entry-like dicts."""
    out = []
    for c in vobject.readComponents(text):

        def get(name: str, c: Any = c) -> Any:
            return getattr(c, name).value if hasattr(c, name) else None

        def lst(name: str, c: Any = c) -> list[Any]:
            return [x.value for x in c.contents.get(name, [])]

        e: dict[str, Any] = {
            "state": get("x_pocsync_state"),
            "kind": get("x_pocsync_kind"),
            "organisation": (get("org") or [""])[0],
            "emails": lst("email"),
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
        networks = get("x_pocsync_networks")
        if networks:
            e["networks"] = networks.split(";")
        key = get("key")
        if isinstance(key, str) and key.startswith(KEY_URI):
            e["public_key"] = base64.b64decode(key[len(KEY_URI) :], validate=True).decode("utf-8")
        extra_text = get("x_pocsync_extra")
        if extra_text:
            extra = json.loads(extra_text)
            for k in ("public_key_fingerprint",) if isinstance(extra, dict) else ():
                if k in extra:
                    e[k] = extra[k]
        chans = lst("x-pocsync-secure-channel")
        if chans:
            e["secure_channels"] = [json.loads(x) for x in chans]
        out.append({"key": get("x_pocsync_key"), "entry": {k: v for k, v in e.items() if v not in (None, [])}})
    return out
