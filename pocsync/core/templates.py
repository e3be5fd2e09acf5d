"""Communication templates: the receipt rules of a template document (PROTOCOL.md §18, ADR 33).

A template is a document a publisher node (``policy.templates.publishers``; by default the
nodes with role ``un``) signs as a ``template`` op.  Every node checks it with the rules here,
so they are deterministic: JSON types, regular expressions over ASCII, counts and lengths in
code points, no library data, no regular-expression engine.  The ``schema`` member is a small
closed subset of JSON Schema that a browser can apply without fetching anything (no ``$ref``,
no remote anything) and whose ``pattern`` strings are a safe regular-expression subset parsed
here (no backreferences, no look-around, no nested quantifiers).

Everything unknown is refused (a member, a keyword, a type): a template's reader must be able
to understand every part of it.  Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from pocsync.core import jsonc
from pocsync.core.model import blank
from pocsync.core.template_pattern import pattern_problem as pattern_problem  # public: tpl.pattern_problem
from pocsync.errors import EntryError, PocsyncError

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")
LANG_RE = re.compile(r"^[a-z]{2}\Z")
PROPERTY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")

PURPOSES = ("request_for_assistance", "notice_of_malicious_activity", "request_for_information", "reply")
REQUIRED_LANGUAGES = ("en", "fr", "es")
PROPERTY_TYPES = ("string", "integer", "boolean")
FORMATS = ("date-time", "email")

MAX_DOCUMENT_BYTES = 65_536  # canonical JSON (PROTOCOL.md §2) of the whole document
MAX_VERSION = 2**31 - 1
MAX_LANGUAGES = 16
MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_LABEL = 200
MAX_HELP = 2_000
MAX_PROPERTIES = 64
MAX_ENUM = 100
MAX_ENUM_STRING = 200
MAX_MAX_LENGTH = 10_000

DOC_MEMBERS = frozenset({"id", "version", "purpose", "languages", "schema"})
LANGUAGE_MEMBERS = frozenset({"title", "text", "fields"})
FIELD_MEMBERS = frozenset({"label", "help", "options"})
SCHEMA_MEMBERS = frozenset({"type", "properties", "required"})
PROPERTY_MEMBERS = frozenset({"type", "enum", "maxLength", "pattern", "format"})

REASON = "bad_template"


def _bad(message: str, field: str = "template") -> EntryError:
    return EntryError(message, reason=REASON, field=field)


def _int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(v: object, where: str, limit: int) -> None:
    if not isinstance(v, str) or blank(v) or len(v) > limit:
        raise _bad(f"{where} must be a string of 1 to {limit} characters, not only white space", where)


def _members(obj: object, allowed: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _bad(f"{where} must be an object", where)
    extra = sorted(set(obj) - allowed)
    if extra:
        raise _bad(f"{where} has unknown members {extra} (allowed: {sorted(allowed)})", where)
    return obj


# --- the schema subset ---------------------------------------------------------------------
def _check_property(name: str, prop: object) -> None:
    w = f"schema.properties.{name}"
    p = _members(prop, PROPERTY_MEMBERS, w)
    t = p.get("type")
    if t not in PROPERTY_TYPES:
        raise _bad(f"{w}.type must be one of {list(PROPERTY_TYPES)}", w)
    if t != "string":
        for k in ("maxLength", "pattern", "format"):
            if k in p:
                raise _bad(f"{w}.{k} applies only to type string", w)
    if "enum" in p:
        values = p["enum"]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_ENUM:
            raise _bad(f"{w}.enum must be a list of 1 to {MAX_ENUM} values", w)
        for v in values:
            ok = (
                (isinstance(v, str) and not blank(v) and len(v) <= MAX_ENUM_STRING)
                if t == "string"
                else _int(v)
                if t == "integer"
                else isinstance(v, bool)
            )
            if not ok:
                raise _bad(
                    f"{w}.enum values must be of type {t}"
                    + (f" (1 to {MAX_ENUM_STRING} characters)" if t == "string" else ""),
                    w,
                )
        if len({(type(v).__name__, v) for v in values}) != len(values):
            raise _bad(f"{w}.enum values must be distinct", w)
    if "maxLength" in p:
        n = p["maxLength"]
        if not _int(n) or not 1 <= n <= MAX_MAX_LENGTH:
            raise _bad(f"{w}.maxLength must be an integer from 1 to {MAX_MAX_LENGTH}", w)
    if "pattern" in p:
        why = pattern_problem(p["pattern"])
        if why is not None:
            raise _bad(f"{w}.pattern is not in the safe regular-expression subset: {why}", w)
    if "format" in p and p["format"] not in FORMATS:
        raise _bad(f"{w}.format must be one of {list(FORMATS)}", w)


def _check_schema(schema: object) -> dict[str, Any]:
    s = _members(schema, SCHEMA_MEMBERS, "schema")
    if s.get("type") != "object":
        raise _bad('schema.type must be "object"', "schema")
    props = s.get("properties")
    if not isinstance(props, dict) or not 1 <= len(props) <= MAX_PROPERTIES:
        raise _bad(f"schema.properties must be an object of 1 to {MAX_PROPERTIES} properties", "schema")
    for name, prop in props.items():
        if not PROPERTY_RE.match(name):
            raise _bad(f"property name {name!r} must match {PROPERTY_RE.pattern}", "schema")
        _check_property(name, prop)
    req = s.get("required", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise _bad("schema.required must be a list of property names", "schema")
    if len(set(req)) != len(req):
        raise _bad("schema.required must not repeat a name", "schema")
    missing = [r for r in req if r not in props]
    if missing:
        raise _bad(f"schema.required names {missing}, which schema.properties does not define", "schema")
    return props


def _check_options(where: str, options: object, prop: dict[str, Any]) -> None:
    """``options``: the label of each value of a string ``enum``, in this language (all of them, no other)."""
    values = prop.get("enum")
    if prop.get("type") != "string" or values is None:
        raise _bad(f"{where}.options applies only to a string property with an enum", where)
    if not isinstance(options, dict) or set(options) != set(values):
        raise _bad(f"{where}.options must give a label for each enum value and no other", where)
    for v in values:
        _text(options[v], f"{where}.options.{v}", MAX_LABEL)


def _check_language(code: str, lang: object, props: dict[str, Any]) -> None:
    names = list(props)
    w = f"languages.{code}"
    obj = _members(lang, LANGUAGE_MEMBERS, w)
    _text(obj.get("title"), f"{w}.title", MAX_TITLE)
    _text(obj.get("text"), f"{w}.text", MAX_TEXT)
    fields = obj.get("fields")
    if not isinstance(fields, dict):
        raise _bad(f"{w}.fields must be an object with a label for every schema property", w)
    missing = [n for n in names if n not in fields]
    if missing:
        raise _bad(f"{w}.fields has no label for {missing}", w)
    extra = sorted(set(fields) - set(names))
    if extra:
        raise _bad(f"{w}.fields names {extra}, which schema.properties does not define", w)
    for n in names:
        f = _members(fields[n], FIELD_MEMBERS, f"{w}.fields.{n}")
        _text(f.get("label"), f"{w}.fields.{n}.label", MAX_LABEL)
        if "help" in f:  # optional; null is not a help text
            _text(f["help"], f"{w}.fields.{n}.help", MAX_HELP)
        if "options" in f:
            _check_options(f"{w}.fields.{n}", f["options"], props[n])


def check_document(doc: object) -> dict[str, Any]:
    """Return ``doc`` when it is a valid template document; else raise EntryError(bad_template).

    The checks run in this order (PROTOCOL.md §18.2): size, members, id, version, purpose, schema,
    languages.
    """
    if not isinstance(doc, dict):
        raise _bad("the template must be a JSON object")
    try:
        size = len(jsonc.dumps(doc))
    except PocsyncError as exc:
        raise _bad(f"the template is not JSON: {exc.message}") from None
    if size > MAX_DOCUMENT_BYTES:
        raise _bad(f"the template is {size} bytes in canonical JSON; the cap is {MAX_DOCUMENT_BYTES}")
    _members(doc, DOC_MEMBERS, "template")
    tid = doc.get("id")
    if not isinstance(tid, str) or not ID_RE.match(tid):
        raise _bad(f"id must match {ID_RE.pattern}", "id")
    v = doc.get("version")
    if not _int(v) or not 1 <= v <= MAX_VERSION:
        raise _bad(f"version must be an integer from 1 to {MAX_VERSION}", "version")
    if doc.get("purpose") not in PURPOSES:
        raise _bad(f"purpose must be one of {list(PURPOSES)}", "purpose")
    if "schema" not in doc:
        raise _bad("schema is missing", "schema")
    props = _check_schema(doc["schema"])
    langs = doc.get("languages")
    if not isinstance(langs, dict):
        raise _bad("languages must be an object of language code -> title, text and fields", "languages")
    missing = [c for c in REQUIRED_LANGUAGES if c not in langs]
    if missing:
        raise _bad(f"languages must include {list(REQUIRED_LANGUAGES)}; missing: {missing}", "languages")
    if len(langs) > MAX_LANGUAGES:
        raise _bad(f"at most {MAX_LANGUAGES} languages", "languages")
    for code in langs:
        if not LANG_RE.match(code):
            raise _bad(f"language code {code!r} must be two lower-case letters (ISO 639-1)", "languages")
    for code in sorted(langs):
        _check_language(code, langs[code], props)
    return doc


def check_op(raw: dict[str, Any]) -> None:
    """The own rules of a ``template`` op: a valid document whose id is the op's key."""
    doc = check_document(raw.get("template"))
    if doc["id"] != raw.get("key"):
        raise _bad(f"template id {doc['id']!r} differs from the op's key {raw.get('key')!r}", "id")


def rank(op: dict[str, Any], hlc: str, origin: str, cs_id: str, index: int) -> tuple[int, str, str, str, int]:
    """The merge rank of an effective template op: (version, hlc, origin, change-set id, op index)."""
    return (op["template"]["version"], hlc, origin, cs_id, index)
