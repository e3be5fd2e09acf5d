"""Strict JSON in, canonical JSON out (PROTOCOL.md §2).

Reading: UTF-8 only, duplicate object keys are an error, no floats, no NaN or
Infinity, integers within ±(2**53 − 1), nesting capped.  Writing: keys sorted,
no insignificant white space, UTF-8 (not ASCII-escaped).  Signatures always cover
the bytes as received: a receiver never re-serialises before verifying.
"""

from __future__ import annotations

import json
from typing import Any

from pocsync.errors import MalformedJSON

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedJSON(f"duplicate JSON object key {key!r}", reason="duplicate_key", field=key)
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise MalformedJSON(f"floating-point number {text!r} is not allowed", reason="float_not_allowed")


def _no_constant(text: str) -> Any:
    raise MalformedJSON(f"{text} is not allowed in pocsync JSON", reason="float_not_allowed")


def _int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise MalformedJSON(f"integer {text} is outside ±(2^53−1)", reason="int_out_of_range")
    return value


def _depth(value: Any, level: int = 0) -> None:
    if level > MAX_DEPTH:
        raise MalformedJSON(f"JSON nested deeper than {MAX_DEPTH} levels", reason="too_deep")
    if isinstance(value, dict):
        for v in value.values():
            _depth(v, level + 1)
    elif isinstance(value, list):
        for v in value:
            _depth(v, level + 1)


def loads(data: bytes | str) -> Any:
    """Parse strict pocsync JSON; raise :class:`MalformedJSON` naming the problem."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(f"not UTF-8: {exc.reason} at byte {exc.start}", reason="not_utf8") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise MalformedJSON("a byte-order mark is not allowed", reason="malformed_json")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_float=_no_float,
            parse_int=_int,
            parse_constant=_no_constant,
        )
    except MalformedJSON:
        raise
    except RecursionError:
        raise MalformedJSON("JSON nested too deeply", reason="too_deep") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    _depth(value)
    return value


def _check(value: Any, path: str = "$") -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise MalformedJSON(f"integer at {path} is outside ±(2^53−1)", reason="int_out_of_range")
        return
    if isinstance(value, float):
        raise MalformedJSON(f"float at {path} is not allowed", reason="float_not_allowed")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise MalformedJSON(f"non-string key at {path}", reason="malformed_json")
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise MalformedJSON(f"value of type {type(value).__name__} at {path} is not JSON", reason="malformed_json")


def dumps(value: Any) -> bytes:
    """Canonical bytes: sorted keys, compact separators, UTF-8."""
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pretty(value: Any) -> str:
    """Human-readable JSON for files people edit (manifests, entries)."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)
