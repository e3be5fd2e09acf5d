"""Discovery of regional format adapters through the entry-point group ``pocsync.adapters``."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Protocol

from pocsync.errors import ConfigError

GROUP = "pocsync.adapters"


class Adapter(Protocol):
    name: str
    description: str

    def read(self, data: bytes) -> list[dict[str, Any]]: ...


def available() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> Adapter:
    eps = available()
    if name not in eps:
        raise ConfigError(f"no adapter {name!r}; installed: {', '.join(sorted(eps)) or 'none'}",
                          reason="unknown_adapter")
    return eps[name].load()()
