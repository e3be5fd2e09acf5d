"""The templates shipped with pocsync (pocsync/templates/*.json): request for assistance, notice of
malicious ICT activity, request for information, reply — in English, French and Spanish.

A UN node publishes them with ``pocsync template publish`` (``manifest create``/the demo does it for
the UN node of a new federation).  Each is valid under :mod:`pocsync.core.templates` (a test keeps them so).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pocsync.core import jsonc


def paths() -> list[Path]:
    folder = Path(str(resources.files("pocsync") / "templates"))
    return sorted(folder.glob("*.json"))


def shipped() -> dict[str, dict[str, Any]]:
    """id -> template document, for every shipped template."""
    out = {}
    for p in paths():
        doc = jsonc.loads(p.read_bytes())
        out[doc["id"]] = doc
    return out
