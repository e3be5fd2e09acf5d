"""The printable page of a snapshot (PROTOCOL.md §17.3): self-contained HTML, no script, no outside asset.

Every field is escaped, with bidirectional and control characters removed, so that a printed number can
never be visually reordered or hidden.  Read by :mod:`pocsync.directory.snapshot` (re-exported there).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocsync.directory.snapshot import Verified


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def age_words(seconds: float) -> str:
    s = int(max(0, seconds))
    d, h, mi = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {mi} min"
    return f"{mi} min {s % 60} s"


# --- rendering -----------------------------------------------------------------------------------------------
# Controls, separators, bidirectional marks, embeddings, overrides and isolates, BOM/noncharacters: removed
# so that a printed number can never be visually reordered or hidden.
# Noncharacters are U+FDD0-U+FDEF and the last two code points of every plane (not only the BMP's); invisible
# characters that could hide inside a number (zero-width space, word joiner and invisible operators, tags)
# go too. Tab and line breaks become a space (removing them would glue words together).
_STRIP = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufdd0-\ufdef\ud800-\udfff\U000e0000-\U000e007f"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
    + "]"
)
_SPACE = re.compile("[\t\n]")


def clean_text(value: Any) -> str:
    """One field as printable text: bidi and control characters stripped, then HTML-escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "yes" if value else "no"
    elif isinstance(value, list):
        value = "; ".join(_flat(v) for v in value)
    elif isinstance(value, dict):
        value = _flat(value)
    return html.escape(_STRIP.sub("", _SPACE.sub(" ", str(value))), quote=True)


def _flat(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_flat(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "; ".join(_flat(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "" if v is None else str(v)


STYLE = """
@page { size: A4; margin: 12mm 10mm; }
body { font: 9.5pt/1.3 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #000; margin: 0;
       font-variant-ligatures: none; }
table { border-collapse: collapse; width: 100%; }
thead { display: table-header-group; }
th, td { border: 0.5pt solid #777; padding: 2pt 3pt; vertical-align: top; text-align: left; word-break: break-word; }
thead th { background: #eee; }
tr { page-break-inside: avoid; break-inside: avoid; }
.banner th { background: #fff; border: none; border-bottom: 1.5pt solid #000; font-weight: normal; font-size: 8pt; }
.banner .digest { font-family: "DejaVu Sans Mono", monospace; white-space: nowrap; }
.state th { background: #ddd; font-size: 10.5pt; }
.warn { color: #a00; font-weight: bold; }
h1 { font-size: 14pt; margin: 0 0 4pt 0; }
p { margin: 0 0 4pt 0; }
"""

COLUMNS = (
    "Kind",
    "Organisation",
    "Position / person",
    "Email",
    "Telephone",
    "24/7",
    "Time zone, languages",
    "Secure channels",
    "Notes",
    "Listed by, last change",
)


def render_html(payload: dict[str, Any], *, verified: Verified | None = None, root_keyid_: str | None = None) -> str:
    """The printable page: every PoC by State, the snapshot's time and digest in the header of every page."""
    taken = clean_text(payload.get("taken_at"))
    digest = clean_text(payload.get("digest"))
    node = clean_text(payload.get("node"))
    if verified is not None:
        status = (
            f"Verified against root key {clean_text(root_keyid_)} (manifest v{verified.manifest_version}, "
            f"signed by {clean_text(verified.keyid)})."
        )
    else:
        status = '<span class="warn">NOT VERIFIED against a root key (run `pocsync snapshot verify`).</span>'
    entries = sorted(
        (e for e in payload.get("entries") or [] if isinstance(e, dict)),  # total: unverified input
        key=lambda e: str(e.get("key")),
    )
    by_state: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_state.setdefault(str(e.get("key", "")).split("/", 1)[0], []).append(e)
    n_cols = len(COLUMNS)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Points of Contact — snapshot {taken}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Points of Contact directory — crisis snapshot</h1>",
        f"<p>Taken {taken} by node {node}. {len(entries)} entries in {len(by_state)} States. {status}</p>",
        "<table>",
        "<thead>",
        f'<tr class="banner"><th colspan="{n_cols}">Snapshot {taken} · node {node} · '
        f'digest <span class="digest">{digest}</span></th></tr>',
        "<tr>" + "".join(f"<th>{c}</th>" for c in COLUMNS) + "</tr>",
        "</thead>",
        "<tbody>",
    ]
    for state in sorted(by_state):
        out.append(f'<tr class="state"><th colspan="{n_cols}">{clean_text(state)}</th></tr>')
        for row in by_state[state]:
            entry = row.get("entry")
            e = entry if isinstance(entry, dict) else {}
            who = " / ".join(x for x in (clean_text(e.get("position")), clean_text(e.get("person"))) if x)
            tz = ", ".join(x for x in (clean_text(e.get("timezone")), clean_text(e.get("languages"))) if x)
            listed = f"{clean_text(row.get('origin'))}, {clean_text(_hlc_time(row.get('hlc')))}"
            cells = [
                clean_text(e.get("kind")),
                clean_text(e.get("organisation")),
                who,
                clean_text(e.get("emails")),
                clean_text(e.get("phones")),
                clean_text(e.get("available_24_7")),
                tz,
                clean_text(e.get("secure_channels")),
                clean_text(e.get("notes")),
                listed,
            ]
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out += ["</tbody>", "</table>", "</body></html>", ""]
    return "\n".join(out)


def _hlc_time(hlc: Any) -> str:
    try:
        return _utc(int(str(hlc)[:13]))[:16].replace("T", " ") + " UTC"
    except ValueError:
        return ""
