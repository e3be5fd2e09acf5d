"""Mappings: which field of a source's record becomes which entry field (a TOML file or an adapter's default).

A :class:`Mapping` says which source field becomes which entry field, how the kind is decided, which
records qualify, which ``network`` the source stands for, and defaults; :func:`load_mapping` reads
one from a file and :func:`parse_mapping` checks one, naming the file and key on any mistake.  The
records themselves become entries in :mod:`pocsync.directory.records`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocsync.core import model
from pocsync.errors import ConfigError

ENTRY_FIELDS = tuple(f for f in model.CONTACT_FIELDS if f != "holder_epoch")
#: Pseudo entry field: PGP fingerprints, turned into ``secure_channels`` of type ``openpgp``.
PGP_FIELD = "pgp_fingerprints"
LIST_FIELDS = (*model.STR_LIST_FIELDS, PGP_FIELD)
#: Record key holding an entry's fields that have no column of their own (pocsync's exports carry them as JSON).
EXTRA = "__extra__"
#: Entry fields that have a column (or attribute) of their own in pocsync's exports: never taken from ``extra``
#: (public_key and its fingerprint have none there: they travel in ``extra``).


@dataclass(frozen=True)
class Record:
    """One record of a source: its reference (used in every message), its own fields, its id."""

    ref: str
    raw: dict[str, Any]
    id: str | None = None
    error: str | None = None  # the reader found this record broken (e.g. bad quoting): why


@dataclass(frozen=True)
class Match:
    field: str
    value: str


@dataclass(frozen=True)
class Mapping:
    """Which source field feeds which entry field, and which records qualify (see docs/adapters/)."""

    fields: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # a fixed kind
    kind_field: str | None = None  # or a source field ...
    kind_map: dict[str, str] = field(default_factory=dict)  # ... with its values mapped
    network: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    qualify_all: bool = True
    qualify_ids: tuple[str, ...] = ()
    qualify_match: tuple[Match, ...] = ()
    qualify_default_reason: str = ""
    list_separator: str = ";"
    extract: tuple[str, ...] = ()  # entry fields to fish out of free text (emails, phones)
    options: dict[str, Any] = field(default_factory=dict)  # adapter-specific: delimiter, encoding, ldap ...
    keep_unmapped: bool = False  # unknown source fields become (unknown) entry fields
    passthrough: bool = False  # the record already is an entry (pocsync's own JSON)
    booleans: dict[str, bool] = field(default_factory=dict)  # extra words for yes/no (e.g. oui = true)
    where: str = ""  # the mapping file, named in errors

    def merged(self, over: Mapping | None) -> Mapping:
        """This (an adapter's default) overlaid by ``over`` (a mapping file)."""
        if over is None:
            return self
        return Mapping(
            fields={**self.fields, **over.fields},
            kind=over.kind if (over.kind or over.kind_field) else self.kind,
            kind_field=over.kind_field if (over.kind or over.kind_field) else self.kind_field,
            kind_map=over.kind_map if (over.kind or over.kind_field) else self.kind_map,
            network=over.network or self.network,
            defaults={**self.defaults, **over.defaults},
            qualify_all=over.qualify_all if over.options.get("_qualify_given") else self.qualify_all,
            qualify_ids=over.qualify_ids if over.options.get("_qualify_given") else self.qualify_ids,
            qualify_match=over.qualify_match if over.options.get("_qualify_given") else self.qualify_match,
            qualify_default_reason=self.qualify_default_reason,
            list_separator=over.options.get("_list_separator", self.list_separator),
            extract=over.extract or self.extract,
            options={
                **self.options,
                **{k: v for k, v in over.options.items() if not k.startswith("_")},
                "file_fields": tuple(over.fields.values()) + ((over.kind_field,) if over.kind_field else ()),
            },
            keep_unmapped=False,
            passthrough=self.passthrough and not over.fields,
            booleans={**self.booleans, **over.booleans},
            where=over.where,
        )


#: Types of the options pocsync's own adapters read (another package's options pass unchecked).
_OPTION_TYPES: dict[str, type] = {
    "encoding": str,
    "delimiter": str,
    "extract_from": str,
    "base": str,
    "filter": str,
    "bind_dn": str,
    "password_file": str,
    "ca_file": str,
    "starttls": bool,
    "timeout_seconds": int,
}
_OPTION_WORDS = {str: "a text", bool: "true or false", int: "a whole number"}

_MAPPING_KEYS = {"fields", "kind", "network", "defaults", "qualify", "list_separator", "extract", "options", "booleans"}


def load_mapping(path: Path) -> Mapping:
    """Read a mapping file (TOML); :class:`ConfigError` naming the file and key on any mistake."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"mapping file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mapping file {path}: {exc}") from None
    m = parse_mapping(raw, where=str(path))
    m = dataclasses.replace(m, where=str(path))
    pf = m.options.get("password_file")
    if isinstance(pf, str) and pf and not Path(pf).is_absolute():  # relative to the mapping file
        m.options["password_file"] = str(path.resolve().parent / pf)
    return m


def parse_mapping(raw: dict[str, Any], *, where: str = "mapping") -> Mapping:
    """A mapping from its TOML table; :class:`ConfigError` (reason ``bad_mapping``) naming ``where`` on a mistake."""

    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}", reason="bad_mapping")

    unknown = set(raw) - _MAPPING_KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_MAPPING_KEYS))}")
    fields_ = raw.get("fields", {})
    if not isinstance(fields_, dict) or not all(isinstance(v, str) for v in fields_.values()):
        raise bad("[fields] maps entry fields to source field names (texts)")
    for k in fields_:
        if k not in ENTRY_FIELDS and k != PGP_FIELD:
            raise bad(f"[fields] {k!r} is not an entry field ({', '.join(ENTRY_FIELDS)}, {PGP_FIELD})")
    kind, kind_field, kind_map = _parse_kind(raw.get("kind"), bad)
    network = raw.get("network")
    if network is not None and (not isinstance(network, str) or not network.strip()):
        raise bad("network must be a non-empty text")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict) or any(d not in ENTRY_FIELDS for d in defaults):
        raise bad(f"[defaults] takes entry fields only ({', '.join(ENTRY_FIELDS)})")
    options = _parse_options(raw.get("options", {}), bad)
    q_all, q_ids, q_match = _parse_qualify(raw.get("qualify"), options, bad)
    if "list_separator" in raw:
        if not isinstance(raw["list_separator"], str) or not raw["list_separator"]:
            raise bad("list_separator must be a non-empty text")
        options["_list_separator"] = raw["list_separator"]
    extract = raw.get("extract", [])
    if not isinstance(extract, list) or any(x not in ("emails", "phones") for x in extract):
        raise bad("extract takes a list of emails and/or phones")
    booleans = raw.get("booleans", {})
    if not isinstance(booleans, dict) or not all(isinstance(v, bool) for v in booleans.values()):
        raise bad("[booleans] maps words to true or false, e.g. oui = true")
    return Mapping(
        booleans={str(k).lower(): v for k, v in booleans.items()},
        fields=dict(fields_),
        kind=kind,
        kind_field=kind_field,
        kind_map=dict(kind_map),
        network=network,
        defaults=dict(defaults),
        qualify_all=q_all,
        qualify_ids=q_ids,
        qualify_match=q_match,
        list_separator=raw.get("list_separator", ";"),
        extract=tuple(extract),
        options=options,
    )


_Bad = Callable[[str], ConfigError]


def _parse_kind(k: Any, bad: _Bad) -> tuple[str | None, str | None, dict[str, str]]:
    """``kind``: a fixed kind, or a [kind] table (source field, value map, default)."""
    kind, kind_field, kind_map = None, None, {}
    if isinstance(k, str):
        kind = k
    elif isinstance(k, dict):
        kind_field, kind_map, kind = k.get("field"), k.get("map", {}), k.get("default")
        if not isinstance(kind_field, str) or not isinstance(kind_map, dict):
            raise bad('[kind] needs field = "source field" and map = {value = "technical"|"diplomatic"}')
        for v in kind_map.values():
            if v not in model.KINDS and v != "skip":
                raise bad(f"[kind] map value {v!r} must be technical, diplomatic or skip")
    elif k is not None:
        raise bad('kind must be "technical", "diplomatic" or a [kind] table')
    if kind is not None and kind not in model.KINDS:
        raise bad(f"kind {kind!r} must be technical or diplomatic")
    return kind, kind_field, kind_map


def _parse_options(raw_options: Any, bad: _Bad) -> dict[str, Any]:
    """``[options]``: the options pocsync's adapters read, each of its one type."""
    if not isinstance(raw_options, dict):
        raise bad("[options] must be a table")
    options: dict[str, Any] = dict(raw_options)
    for name, value in options.items():
        want = _OPTION_TYPES.get(name)
        if want is not None and (not isinstance(value, want) or isinstance(value, bool) and want is not bool):
            raise bad(f"[options] {name} must be {_OPTION_WORDS[want]}, not {type(value).__name__}")
    t = options.get("timeout_seconds")
    if t is not None and not 1 <= t <= 3600:
        raise bad("[options] timeout_seconds must be between 1 and 3600")
    return options


def _parse_qualify(q: Any, options: dict[str, Any], bad: _Bad) -> tuple[bool, tuple[str, ...], tuple[Match, ...]]:
    """``[qualify]``: which records qualify (all, listed ids, field matches); notes in ``options`` that it was given."""
    if q is None:
        return True, (), ()
    if not isinstance(q, dict) or set(q) - {"all", "ids", "match"}:
        raise bad("[qualify] takes all = true, ids = [...] and [[qualify.match]] field/value")
    options["_qualify_given"] = True
    q_all = q.get("all") is True
    ids = q.get("ids", [])
    if not isinstance(ids, list):
        raise bad("[qualify] ids must be a list")
    q_ids = tuple(str(i) for i in ids)
    matches = q.get("match", [])
    if isinstance(matches, dict):
        matches = [matches]
    if not isinstance(matches, list) or not all(
        isinstance(m, dict) and isinstance(m.get("field"), str) and isinstance(m.get("value"), (str, int))
        for m in matches
    ):
        raise bad('[[qualify.match]] needs field = "..." and value = "..."')
    return q_all, q_ids, tuple(Match(m["field"], str(m["value"])) for m in matches)
