"""Strict JSON in, canonical JSON out (PROTOCOL.md §2).

Reading: UTF-8 only (no byte-order mark), duplicate object keys are an error, no
floats, no NaN or Infinity, integers within ±(2**53 − 1), nesting capped at
:data:`MAX_DEPTH` containers (the outermost counts as level 1), and no unpaired
surrogate escape (``"\\ud800"``) in any string or object key: such text has no UTF-8
form, so it could be verified but never stored, rendered or exported (ADR 17).  Writing: keys sorted,
no insignificant white space, UTF-8 (not ASCII-escaped).  Signatures always cover
the bytes as received: a receiver never re-serialises before verifying.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from pocsync.errors import MalformedJSON

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A string runs from a quote to the next unescaped quote (or the end of the text); everything
# else that is a bracket counts for nesting.  Exact for JSON, and defined for any text.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)

#: Every reason :func:`loads` may give.  When a text has several problems, the one reported
#: is the first of this list (PROTOCOL.md §2), whatever their positions in the text.
REASONS = (
    "not_utf8",
    "byte_order_mark",
    "too_deep",
    "malformed_json",
    "duplicate_key",
    "float_not_allowed",
    "int_out_of_range",
    "lone_surrogate",
)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)  # the string alternative of _TOKENS
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_NON_BRACKET = re.compile(r"[^\[\]{}]+")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # the only way a lone surrogate reaches a parsed string


def nesting_depth(text: str) -> int:
    """Greatest number of open ``[``/``{`` outside strings (the outermost container counts 1).

    The same tokens as ``_TOKENS`` (strings removed first, then only brackets counted), at C speed."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return _nesting_depth_slow(text)  # few brackets: the exact walk is cheap
    brackets = _NON_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _nesting_depth_slow(text: str) -> int:
    depth = deepest = 0
    for t in _TOKENS.findall(text):
        if t in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif t in "]}":
            depth -= 1
    return deepest


class _Problems:
    """Problems found while parsing; the first of each reason is kept with its message."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[str, dict[str, Any]]] = {}

    def note(self, reason: str, message: str, **detail: Any) -> None:
        self.found.setdefault(reason, (message, detail))

    def surrogates(self, text: str, where: str) -> None:
        m = _LONE_SURROGATE.search(text)
        if m is not None:
            self.note(
                "lone_surrogate",
                f"{where} holds an unpaired surrogate escape \\u{ord(m.group()):04x} (not representable in UTF-8)",
            )

    def raise_first(self) -> None:
        for reason in REASONS:
            if reason in self.found:
                message, detail = self.found[reason]
                raise MalformedJSON(message, reason=reason, **detail)


def loads(data: bytes | str) -> Any:
    """Parse strict pocsync JSON; raise :class:`MalformedJSON` naming the problem.

    The reason is the first of :data:`REASONS` that applies: encoding, byte-order mark,
    nesting (counted on the text, before parsing), syntax, then the value rules.
    """
    text = _text_of(data)
    problems = _Problems()
    # A lone surrogate can only come from a \\uD800-\\uDFFF escape (UTF-8 text cannot hold one): without
    # such an escape in the text, no string or key needs the per-string check (issue 13: one pass).
    escapes = _ESCAPED_SURROGATE.search(text) is not None or (
        not isinstance(data, (bytes, bytearray, memoryview)) and _LONE_SURROGATE.search(text) is not None
    )

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if escapes:
                problems.surrogates(key, "an object key")
            if key in out:
                problems.note("duplicate_key", f"duplicate JSON object key {key!r}", field=key)
            out[key] = value
        return out

    def no_float(text_: str) -> None:
        problems.note("float_not_allowed", f"number {text_!r} has a fraction or exponent; only integers are allowed")

    def no_constant(text_: str) -> None:
        problems.note("float_not_allowed", f"{text_} is not allowed in pocsync JSON")

    def integer(text_: str) -> int:
        if len(text_) > 17:  # beyond ±(2^53−1) (16 digits) whatever the digits; and never int() of 4301+
            problems.note("int_out_of_range", f"integer {text_[:20]}… ({len(text_)} characters) is outside ±(2^53−1)")
            return 0
        value = int(text_)
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            problems.note("int_out_of_range", f"integer {text_} is outside ±(2^53−1)")
        return value

    try:
        value = json.loads(
            text, object_pairs_hook=pairs, parse_float=no_float, parse_int=integer, parse_constant=no_constant
        )
    except RecursionError:  # unreachable after the nesting check; kept total
        raise MalformedJSON("JSON nested too deeply", reason="too_deep") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if escapes:
        _strings(value, problems)
    problems.raise_first()
    return value


def _text_of(data: bytes | str) -> str:
    """The text of ``data`` after the checks that come before parsing: UTF-8, no byte-order mark, nesting."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(f"not UTF-8: {exc.reason} at byte {exc.start}", reason="not_utf8") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise MalformedJSON("a byte-order mark (U+FEFF) is not allowed before JSON text", reason="byte_order_mark")
    if nesting_depth(text) > MAX_DEPTH:
        raise MalformedJSON(f"JSON nested deeper than {MAX_DEPTH} containers (the outermost counts)", reason="too_deep")
    return text


def _strings(value: Any, problems: _Problems) -> None:
    if isinstance(value, str):
        problems.surrogates(value, "a string")
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, problems)
    elif isinstance(value, list):
        for v in value:
            _strings(v, problems)


def _no_surrogate(text: str, where: str) -> None:
    m = _LONE_SURROGATE.search(text)
    if m is not None:
        raise MalformedJSON(
            f"{where} holds an unpaired surrogate \\u{ord(m.group()):04x} (not representable in UTF-8)",
            reason="lone_surrogate",
        )


def _check(value: Any, path: str = "$", level: int = 0) -> None:
    if isinstance(value, str):
        _no_surrogate(value, f"the string at {path}")
        return
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise MalformedJSON(f"integer at {path} is outside ±(2^53−1)", reason="int_out_of_range")
        return
    if isinstance(value, float):
        raise MalformedJSON(f"float at {path} is not allowed", reason="float_not_allowed")
    if isinstance(value, (dict, list, tuple)) and level + 1 > MAX_DEPTH:
        raise MalformedJSON(f"value at {path} nests deeper than {MAX_DEPTH} containers", reason="too_deep")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise MalformedJSON(f"non-string key at {path}", reason="malformed_json")
            _no_surrogate(k, f"the key {path}.{k!r}")
            _check(v, f"{path}.{k}", level + 1)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]", level + 1)
        return
    raise MalformedJSON(f"value of type {type(value).__name__} at {path} is not JSON", reason="malformed_json")


def dumps(value: Any) -> bytes:
    """Canonical bytes: sorted keys, compact separators, UTF-8.

    Refuses (MalformedJSON) whatever :func:`loads` would refuse to read back, so
    nothing is signed that a receiver must reject."""
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
