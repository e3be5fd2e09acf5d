"""Adapters: how a secretariat's existing directory becomes pocsync entries, and back.

An adapter is a class found through the entry-point group ``pocsync.adapters`` (so another
package can add one).  It reads a source into :class:`Record` objects — each a flat or nested
dict of the source's own fields with a *source reference* (``file:line``, a DN, an id) that every
error names — and may write the merged view back in its format.  A :class:`Mapping` (a TOML
file, or the adapter's built-in default) says which source field becomes which entry field, how
the kind is decided, which records qualify, which ``network`` the source stands for, and defaults
(:mod:`pocsync.directory.mapping`); :func:`map_record` applies it (:mod:`pocsync.directory.records`;
both re-exported here).  The result then passes the strict checks of
:mod:`pocsync.directory.intake`, like any hand-made entry.

Errors: a source that cannot be read at all raises :class:`~pocsync.errors.SourceError`; a record
that cannot be mapped raises :class:`~pocsync.errors.EntryError` naming ``record`` and ``field``.
Nothing else escapes a reader or :func:`map_record` (the Hypothesis tests check this).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any, Protocol

from pocsync.directory.mapping import (
    ENTRY_FIELDS,
    EXTRA,
    LIST_FIELDS,
    PGP_FIELD,
    Mapping,
    Match,
    Record,
    load_mapping,
    parse_mapping,
)
from pocsync.directory.records import lookup, map_record, qualifies, state_code
from pocsync.errors import ConfigError

__all__ = [
    "ENTRY_FIELDS",
    "EXTRA",
    "GROUP",
    "LIST_FIELDS",
    "MAX_SOURCE_BYTES",
    "PGP_FIELD",
    "Adapter",
    "Mapping",
    "Match",
    "Record",
    "available",
    "check_options",
    "load",
    "load_mapping",
    "lookup",
    "map_record",
    "parse_mapping",
    "qualifies",
    "state_code",
    "writers",
]

GROUP = "pocsync.adapters"

#: Largest source an adapter reads from a file or a socket (bytes).
MAX_SOURCE_BYTES = 64 * 1024 * 1024


COMMON_OPTIONS = ("extract_from", "file_fields")  # every adapter's (extract), and set by Mapping.merged


def check_options(adapter: Any, mapping: Mapping) -> None:
    """ConfigError naming an ``[options]`` key the adapter does not know (a typo such as ``delimeter``
    would otherwise be ignored in silence).  An adapter without ``option_keys`` is not checked."""
    known = getattr(adapter, "option_keys", None)
    if known is None:
        return
    unknown = sorted(k for k in mapping.options if k not in known and k not in COMMON_OPTIONS)
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise ConfigError(
            f"{mapping.where + ': ' if mapping.where else ''}[options] {', '.join(unknown)}: not an option of the {adapter.name} adapter "
            f"(its options: {listed})",
            reason="bad_mapping",
        )


class Adapter(Protocol):
    """What an adapter provides.  ``read`` yields records or raises SourceError; ``write`` is optional."""

    name: str
    description: str
    reads: str  # what it reads, in a few words
    writes: str | None  # what it writes, or None
    default_mapping: Mapping

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]: ...


def available() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> Adapter:
    eps = available()
    if name not in eps:
        raise ConfigError(
            f"no adapter {name!r}; installed: {', '.join(sorted(eps)) or 'none'}", reason="unknown_adapter"
        )
    try:
        adapter: Adapter = eps[name].load()()
    except Exception as exc:  # a third-party package that fails to import
        raise ConfigError(
            f"adapter {name!r} failed to load: {type(exc).__name__}: {exc}", reason="unknown_adapter"
        ) from None
    return adapter


def writers() -> list[str]:
    return sorted(n for n in available() if getattr(load(n), "writes", None))
