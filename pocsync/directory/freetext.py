"""What free text in an entry may hold (issue 11, case 13; ADR 15).

Free text — ``organisation``, ``position``, ``person``, ``notes``, list items and every other string of
an entry — is any sequence of Unicode scalar values EXCEPT:

* C0 controls U+0000–U+001F (``notes`` alone may hold LF, U+000A) and DEL U+007F;
* C1 controls U+0080–U+009F (NEL U+0085 among them);
* the line and paragraph separators U+2028 and U+2029;
* bidirectional embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069 (the marks
  LRM, RLM and ALM stay allowed: right-to-left names need them and they reorder nothing);
* lone surrogates U+D800–U+DFFF and the noncharacters U+FFFE and U+FFFF.

The origin refuses such text (:func:`problem`, used by :mod:`pocsync.directory.intake`); receivers do not
validate (ADR 6), so every renderer also passes text through :func:`clean` (CSV, vCard) or escapes it
(:func:`escape_json`) — whatever a member node signed.
"""

from __future__ import annotations

import re

_FORBIDDEN = "\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff"
FORBIDDEN_RE = re.compile(f"[{_FORBIDDEN}\n]")
FORBIDDEN_ONE_LINE_RE = FORBIDDEN_RE
FORBIDDEN_MULTILINE_RE = re.compile(f"[{_FORBIDDEN}]")
MULTILINE_FIELDS = frozenset({"notes", "public_key"})  # line feeds kept (public_key: armored ASCII)
MAX_CHARS = 1000  # one string of an entry, at the origin (a whole entry is also capped by the envelope size)
MAX_MULTILINE_CHARS = 10_000  # notes
REPLACEMENT = "\ufffd"


def _pattern(multiline: bool) -> re.Pattern[str]:
    return FORBIDDEN_MULTILINE_RE if multiline else FORBIDDEN_ONE_LINE_RE


def problem(text: str, *, multiline: bool = False) -> str | None:
    """None when ``text`` is acceptable free text, else what is wrong (naming the code point)."""
    cap = MAX_MULTILINE_CHARS if multiline else MAX_CHARS
    if len(text) > cap:
        return f"{len(text)} characters is longer than the {cap} allowed"
    m = _pattern(multiline).search(text)
    if m is None:
        return None
    return f"U+{ord(m.group()):04X} at position {m.start()} is not allowed in free text"


def clean(text: str, *, multiline: bool = False) -> str:
    """``text`` with every forbidden code point replaced by U+FFFD (for renderers)."""
    return _pattern(multiline).sub(REPLACEMENT, text)


_JSON_ESCAPE_RE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")


def escape_json(text: str) -> str:
    """JSON text with the forbidden code points json.dumps leaves raw written as ``\\uXXXX`` escapes:
    the same data when parsed, nothing that reorders or breaks lines when displayed."""
    return _JSON_ESCAPE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
