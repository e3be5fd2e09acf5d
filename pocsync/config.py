"""``sync.toml``: a node's configuration, read with tomllib into frozen dataclasses.

Every limit has a name here.  Relative paths are relative to the file's folder.
Unknown keys are an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pocsync.core.replica import Limits
from pocsync.errors import ConfigError


@dataclass(frozen=True)
class NodeConfig:
    id: str
    organisation: str = ""
    store: str = "store.sqlite"
    keys_dir: str = "keys"
    token_kid: str = ""


@dataclass(frozen=True)
class LimitsConfig:
    max_envelope_bytes: int = 256 * 1024
    max_clock_skew_seconds: int = 300

    def core(self) -> Limits:
        return Limits(max_envelope_bytes=self.max_envelope_bytes,
                      max_clock_skew_ms=self.max_clock_skew_seconds * 1000)


@dataclass(frozen=True)
class Config:
    path: Path
    node: NodeConfig
    limits: LimitsConfig = field(default_factory=LimitsConfig)

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.base / q

    @property
    def store_path(self) -> Path:
        return self.resolve(self.node.store)

    @property
    def keys_path(self) -> Path:
        return self.resolve(self.node.keys_dir)


def _section(cls: type, raw: Any, name: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    for k, v in raw.items():
        want = known[k].type
        if (want in ("int", int) and (not isinstance(v, int) or isinstance(v, bool))) or \
           (want in ("str", str) and not isinstance(v, str)):
            raise ConfigError(f"[{name}] {k} must be of type {want}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def load(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; create one with `pocsync init`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(raw) - {"node", "limits"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s): {', '.join(sorted(unknown))}")
    if "node" not in raw:
        raise ConfigError(f"{path}: missing [node] section")
    return Config(path=path.resolve(), node=_section(NodeConfig, raw["node"], "node"),
                  limits=_section(LimitsConfig, raw.get("limits"), "limits"))


def render(node_id: str, organisation: str) -> str:
    """The sync.toml that ``pocsync init`` writes."""
    return f'''# pocsync node configuration (see sync.toml.example for every key).
[node]
id = "{node_id}"
organisation = "{organisation}"
store = "store.sqlite"
keys_dir = "keys"
token_kid = "{node_id}:t1"

[limits]
max_envelope_bytes = 262144
max_clock_skew_seconds = 300
'''
