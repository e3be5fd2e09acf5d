"""Helpers shared by the adapters: bounded JSON reading with the source's name in every error."""

from __future__ import annotations

import json
from typing import Any

from pocsync.errors import SourceError


def _no_nan(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def load_json(data: bytes, source: str) -> Any:
    """Any JSON document (floats allowed: third-party exports hold them); SourceError otherwise."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{source}: not UTF-8 JSON (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_no_nan)
    except RecursionError:
        raise SourceError(f"{source}: JSON nested too deeply") from None
    except ValueError as exc:
        raise SourceError(f"{source}: not JSON: {exc}") from None


def text_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value)
    return None
