"""Adapters: how a secretariat's existing directory becomes pocsync entries, and back.

An adapter is a class found through the entry-point group ``pocsync.adapters`` (so another
package can add one).  It reads a source into :class:`Record` objects — each a flat or nested
dict of the source's own fields with a *source reference* (``file:line``, a DN, an id) that every
error names — and may write the merged view back in its format.  A :class:`Mapping` (a TOML
file, or the adapter's built-in default) says which source field becomes which entry field, how
the kind is decided, which records qualify, which ``network`` the source stands for, and defaults;
:func:`map_record` applies it.  The result then passes the strict checks of
:mod:`pocsync.directory.intake`, like any hand-made entry.

Errors: a source that cannot be read at all raises :class:`~pocsync.errors.SourceError`; a record
that cannot be mapped raises :class:`~pocsync.errors.EntryError` naming ``record`` and ``field``.
Nothing else escapes a reader or :func:`map_record` (the Hypothesis tests check this).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterator, Protocol

import pycountry

from pocsync.core import model
from pocsync.errors import ConfigError, EntryError

GROUP = "pocsync.adapters"

#: Largest source an adapter reads from a file or a socket (bytes).
MAX_SOURCE_BYTES = 64 * 1024 * 1024

ENTRY_FIELDS = tuple(f for f in model.CONTACT_FIELDS if f != "holder_epoch")
#: Pseudo entry field: PGP fingerprints, turned into ``secure_channels`` of type ``openpgp``.
PGP_FIELD = "pgp_fingerprints"
LIST_FIELDS = (*model.STR_LIST_FIELDS, PGP_FIELD)
#: Record key holding an entry's fields that have no column of their own (pocsync's exports carry them as JSON).
EXTRA = "__extra__"
#: Entry fields that have a column (or attribute) of their own in pocsync's exports: never taken from ``extra``
#: (public_key and its fingerprint have none there: they travel in ``extra``).
_COLUMN_FIELDS = ("state", "kind", "organisation", "position", "person", "emails", "phones", "available_24_7",
                  "timezone", "languages", "networks", "secure_channels", "notes", "holder_epoch")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(r"\+[0-9][0-9 .-]{5,20}[0-9]")
TRUE, FALSE = {"yes", "true", "1", "y", "24/7", "24x7"}, {"no", "false", "0", "n"}


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
    kind: str | None = None            # a fixed kind
    kind_field: str | None = None      # or a source field ...
    kind_map: dict[str, str] = field(default_factory=dict)  # ... with its values mapped
    network: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    qualify_all: bool = True
    qualify_ids: tuple[str, ...] = ()
    qualify_match: tuple[Match, ...] = ()
    qualify_default_reason: str = ""
    list_separator: str = ";"
    extract: tuple[str, ...] = ()      # entry fields to fish out of free text (emails, phones)
    options: dict[str, Any] = field(default_factory=dict)  # adapter-specific: delimiter, encoding, ldap ...
    keep_unmapped: bool = False        # unknown source fields become (unknown) entry fields
    passthrough: bool = False          # the record already is an entry (pocsync's own JSON)
    booleans: dict[str, bool] = field(default_factory=dict)  # extra words for yes/no (e.g. oui = true)
    where: str = ""                    # the mapping file, named in errors

    def merged(self, over: "Mapping | None") -> "Mapping":
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
            options={**self.options, **{k: v for k, v in over.options.items() if not k.startswith("_")},
                     "file_fields": tuple(over.fields.values()) + ((over.kind_field,) if over.kind_field else ())},
            keep_unmapped=False,
            passthrough=self.passthrough and not over.fields,
            booleans={**self.booleans, **over.booleans},
            where=over.where,
        )


#: Types of the options pocsync's own adapters read (another package's options pass unchecked).
_OPTION_TYPES: dict[str, type] = {"encoding": str, "delimiter": str, "extract_from": str, "base": str, "filter": str,
                                  "bind_dn": str, "password_file": str, "ca_file": str, "starttls": bool,
                                  "timeout_seconds": int}
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
    kind, kind_field, kind_map = None, None, {}
    k = raw.get("kind")
    if isinstance(k, str):
        kind = k
    elif isinstance(k, dict):
        kind_field, kind_map, kind = k.get("field"), k.get("map", {}), k.get("default")
        if not isinstance(kind_field, str) or not isinstance(kind_map, dict):
            raise bad("[kind] needs field = \"source field\" and map = {value = \"technical\"|\"diplomatic\"}")
        for v in kind_map.values():
            if v not in model.KINDS and v != "skip":
                raise bad(f"[kind] map value {v!r} must be technical, diplomatic or skip")
    elif k is not None:
        raise bad("kind must be \"technical\", \"diplomatic\" or a [kind] table")
    if kind is not None and kind not in model.KINDS:
        raise bad(f"kind {kind!r} must be technical or diplomatic")
    network = raw.get("network")
    if network is not None and (not isinstance(network, str) or not network.strip()):
        raise bad("network must be a non-empty text")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict) or any(d not in ENTRY_FIELDS for d in defaults):
        raise bad(f"[defaults] takes entry fields only ({', '.join(ENTRY_FIELDS)})")
    if not isinstance(raw.get("options", {}), dict):
        raise bad("[options] must be a table")
    options: dict[str, Any] = dict(raw.get("options", {}))
    for name, value in options.items():  # the options pocsync's adapters read: each of its one type
        want = _OPTION_TYPES.get(name)
        if want is not None and (not isinstance(value, want) or isinstance(value, bool) and want is not bool):
            raise bad(f"[options] {name} must be {_OPTION_WORDS[want]}, not {type(value).__name__}")
    t = options.get("timeout_seconds")
    if t is not None and not 1 <= t <= 3600:
        raise bad("[options] timeout_seconds must be between 1 and 3600")
    q = raw.get("qualify")
    q_all, q_ids, q_match = True, (), ()
    if q is not None:
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
                for m in matches):
            raise bad("[[qualify.match]] needs field = \"...\" and value = \"...\"")
        q_match = tuple(Match(m["field"], str(m["value"])) for m in matches)
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
    return Mapping(booleans={str(k).lower(): v for k, v in booleans.items()}, fields=dict(fields_), kind=kind, kind_field=kind_field, kind_map=dict(kind_map), network=network,
                   defaults=dict(defaults), qualify_all=q_all, qualify_ids=q_ids, qualify_match=q_match,
                   list_separator=raw.get("list_separator", ";"), extract=tuple(extract), options=options)


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
        raise ConfigError(f"{mapping.where + ': ' if mapping.where else ''}[options] {', '.join(unknown)}: not an option of the {adapter.name} adapter "
                          f"(its options: {listed})", reason="bad_mapping")


class Adapter(Protocol):
    """What an adapter provides.  ``read`` yields records or raises SourceError; ``write`` is optional."""

    name: str
    description: str
    reads: str          # what it reads, in a few words
    writes: str | None  # what it writes, or None
    default_mapping: Mapping

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]: ...


def available() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> Adapter:
    eps = available()
    if name not in eps:
        raise ConfigError(f"no adapter {name!r}; installed: {', '.join(sorted(eps)) or 'none'}",
                          reason="unknown_adapter")
    try:
        return eps[name].load()()
    except Exception as exc:  # a third-party package that fails to import
        raise ConfigError(f"adapter {name!r} failed to load: {type(exc).__name__}: {exc}",
                          reason="unknown_adapter") from None


def writers() -> list[str]:
    return sorted(n for n in available() if getattr(load(n), "writes", None))


# --- mapping records to entries ---------------------------------------------------
def lookup(raw: dict[str, Any], path: str) -> Any:
    """``path`` in ``raw``: an exact key first, else dotted (``a.b``), ``a[].b`` over a list of objects."""
    if path in raw:
        return raw[path]
    if path.lower() in raw:  # LDAP attribute names are case-insensitive; readers store them lower-cased
        return raw[path.lower()]
    cur: Any = raw
    for part in path.split("."):
        if part.endswith("[]"):
            part = part[:-2]
            cur = cur.get(part) if isinstance(cur, dict) else None
            if not isinstance(cur, list):
                return None
            continue
        if isinstance(cur, list):
            cur = [x.get(part) for x in cur if isinstance(x, dict) and x.get(part) is not None]
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
        if cur is None:
            return None
    return cur


def _as_text(ref: str, name: str, value: Any, *, strip: bool = True) -> str | None:
    if isinstance(value, list):
        value = [v for v in value if v not in (None, "")]
        if not value:
            return None
        if len(value) > 1 and name in ("state", "kind", "organisation", "person"):
            raise _fail(ref, name, f"has {len(value)} values where one is expected")
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(ref, name, "is not UTF-8 text") from None
    if isinstance(value, bool) or value is None:
        return None if value is None else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise _fail(ref, name, f"must be a text, not {type(value).__name__}")
    if not value.strip():
        return None
    return value.strip() if strip else value


def _as_list(ref: str, name: str, value: Any, sep: str) -> list[str]:
    """A list field: a list's items as they are; a text split at ``sep``."""
    split = sep and not isinstance(value, list)
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, item in enumerate(items):
        text = _as_text(ref, f"{name}[{i}]", item)
        if text is None:
            continue
        out.extend(x.strip() for x in (text.split(sep) if split else [text]) if x.strip())
    return out


def _fail(ref: str, field_: str, message: str, reason: str = "bad_field") -> EntryError:
    return EntryError(f'record {ref}: field "{field_}": {message}', reason=reason, field=field_, record=ref)


# English names in everyday use (UN and regional lists, mail clients) that ISO 3166-1 spells otherwise.
_STATE_ALIASES = {
    "uk": "GBR", "great britain": "GBR", "turkey": "TUR", "russia": "RUS", "republic of korea": "KOR",
    "ivory coast": "CIV", "holy see": "VAT", "vatican": "VAT", "cape verde": "CPV", "swaziland": "SWZ",
    "macedonia": "MKD", "dr congo": "COD", "drc": "COD", "democratic republic of the congo": "COD",
    "republic of the congo": "COG", "brunei": "BRN", "palestine": "PSE", "state of palestine": "PSE",
    "micronesia": "FSM", "east timor": "TLS", "burma": "MMR", "north korea": "PRK",
    "democratic people's republic of korea": "PRK", "czech republic": "CZE", "slovak republic": "SVK",
}


def state_code(ref: str, value: str) -> str:
    """ISO 3166-1 alpha-3 from alpha-3, alpha-2 or an English country name (pycountry, plus names in
    everyday use such as "Turkey", "Russia", "The Netherlands", "St Lucia")."""
    v = " ".join(value.split())
    low = v.casefold()
    if low.startswith("the "):
        v, low = v[4:], low[4:]
    if low.startswith(("st ", "st. ")):
        v = "Saint " + v.split(" ", 1)[1]
        low = v.casefold()
    if low in _STATE_ALIASES:
        return _STATE_ALIASES[low]
    country = None
    if len(v) == 3 and v.isalpha():
        country = pycountry.countries.get(alpha_3=v.upper())
    elif len(v) == 2 and v.isalpha():
        country = pycountry.countries.get(alpha_2=v.upper())
    else:
        try:
            country = pycountry.countries.lookup(v)
        except LookupError:
            country = None
    if country is None:
        raise _fail(ref, "state", f"{value!r} is not an ISO 3166-1 country code or English name "
                    "(give the ISO code, e.g. BE or BEL)", "unknown_state")
    return country.alpha_3


def _bool(ref: str, value: Any, words: dict[str, bool]) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _as_text(ref, "available_24_7", value)
    if text is None:
        return None
    if text.lower() in words:
        return words[text.lower()]
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise _fail(ref, "available_24_7", f"must be yes or no, not {text!r}")


def _channels(ref: str, value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        if isinstance(item, str):
            if not item.strip():
                continue
            try:
                item = json.loads(item)
            except ValueError:
                raise _fail(ref, f"secure_channels[{i}]", "is not a JSON object or list") from None
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    for i, ch in enumerate(out):
        if not isinstance(ch, dict):
            raise _fail(ref, f"secure_channels[{i}]", "must be an object")
    return out


def qualifies(rec: Record, m: Mapping) -> str | None:
    """``None`` if the record qualifies, else the reason it is skipped."""
    if m.qualify_all and not m.qualify_ids and not m.qualify_match:
        return None
    if rec.id is not None and rec.id in m.qualify_ids:
        return None
    for match in m.qualify_match:
        v = lookup(rec.raw, match.field)
        values = v if isinstance(v, list) else [v]
        if any(isinstance(x, (str, int)) and str(x).strip().lower() == match.value.lower() for x in values):
            return None
    if not m.qualify_ids and not m.qualify_match:
        return m.qualify_default_reason or "the mapping qualifies no record"
    rules = [f"id in {len(m.qualify_ids)} listed id(s)"] if m.qualify_ids else []
    rules += [f"{x.field} = {x.value!r}" for x in m.qualify_match]
    return "not national-level: matches none of " + "; ".join(rules)


def map_record(rec: Record, m: Mapping) -> dict[str, Any] | str:
    """The entry for ``rec`` (not yet validated), or a text: the reason the record is skipped.

    Raises EntryError naming the record and field when a value cannot be mapped.
    """
    if rec.error is not None:
        raise _fail(rec.ref, "record", rec.error, "bad_record")
    reason = qualifies(rec, m)
    if reason is not None:
        return reason
    ref = rec.ref
    e: dict[str, Any] = {}
    if m.passthrough:
        e = {k: v for k, v in rec.raw.items() if k != "holder_epoch"}
        for k, v in m.defaults.items():
            e.setdefault(k, v)
        if m.network:
            nets = e.get("networks") if isinstance(e.get("networks"), list) else []
            e["networks"] = list(dict.fromkeys([*nets, m.network]))
        return e
    mapped_sources = set()
    names = dict(m.fields)
    if m.keep_unmapped:
        for k in rec.raw:
            if isinstance(k, str) and k not in names.values() and k not in names and k and k != EXTRA:
                names.setdefault(k, k)
    for name, path in names.items():
        mapped_sources.add(path)
        value = lookup(rec.raw, path)
        if value is None or value == "" or value == []:
            continue
        if name in LIST_FIELDS:
            items = _as_list(ref, name, value, m.list_separator)
            if name == PGP_FIELD:
                chans = [{"type": "openpgp", "fingerprint": fp.replace(" ", "").upper()} for fp in items]
                if chans:
                    e.setdefault("secure_channels", []).extend(chans)
            elif items:
                e[name] = items
        elif name == "available_24_7":
            b = _bool(ref, value, m.booleans)
            if b is not None:
                e[name] = b
        elif name == "secure_channels":
            chans = _channels(ref, value)
            if chans:
                e.setdefault("secure_channels", [])[:0] = chans
        else:
            text = _as_text(ref, name, value, strip=name != "notes")  # notes are kept as written (round trip)
            if text is not None:
                e[name] = text
    for name in m.extract:
        found: list[str] = []
        scan = [rec.raw.get(m.options["extract_from"])] if m.options.get("extract_from") else rec.raw.values()
        for v in scan:
            for text in (v if isinstance(v, list) else [v]):
                if isinstance(text, str):
                    found += (_EMAIL_RE if name == "emails" else _PHONE_RE).findall(text)
        if found:
            e[name] = list(dict.fromkeys([*e.get(name, []), *(re.sub(r"[ ()./-]", "", f) if name == "phones" else f
                                                               for f in found)]))
    extra = rec.raw.get(EXTRA)
    if isinstance(extra, dict):
        for k, v in extra.items():
            if isinstance(k, str) and k not in _COLUMN_FIELDS:  # fields with no column travel in extra
                e.setdefault(k, v)
    if m.kind_field:
        found = lookup(rec.raw, m.kind_field)
        values = [v for v in (found if isinstance(found, list) else [found]) if isinstance(v, (str, int))]
        mapped = [str(v).strip() for v in values if str(v).strip() in m.kind_map]
        raw_kind = mapped[0] if mapped else (str(values[0]).strip() if values else None)
        kind = m.kind_map.get(raw_kind or "", None) if raw_kind is not None else None
        if kind is None:
            kind = m.kind
        if kind == "skip":
            return f"{m.kind_field} = {raw_kind!r} is skipped by the mapping"
        if kind is None:
            raise _fail(ref, m.kind_field, f"{raw_kind!r} is not mapped to a kind ([kind] map)", "unknown_kind")
        e["kind"] = kind
    elif m.kind and "kind" not in e:
        e["kind"] = m.kind
    for k, v in m.defaults.items():
        e.setdefault(k, v)
    if isinstance(e.get("state"), str):
        e["state"] = state_code(ref, e["state"])
    if m.network:
        e["networks"] = list(dict.fromkeys([*e.get("networks", []), m.network]))
    return e
