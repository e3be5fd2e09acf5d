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
from typing import Any

from pocsync.core import jsonc
from pocsync.core.model import blank
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
MAX_PATTERN = 200
MAX_QUANTIFIERS = 10
MAX_REPEAT = 1_000

DOC_MEMBERS = frozenset({"id", "version", "purpose", "languages", "schema"})
LANGUAGE_MEMBERS = frozenset({"title", "text", "fields"})
FIELD_MEMBERS = frozenset({"label", "help", "options"})
SCHEMA_MEMBERS = frozenset({"type", "properties", "required"})
PROPERTY_MEMBERS = frozenset({"type", "enum", "maxLength", "pattern", "format"})

REASON = "bad_template"


def _bad(message: str, field: str = "template") -> EntryError:
    return EntryError(message, reason=REASON, field=field)


def _int(v: object) -> bool:
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


# --- the safe regular-expression subset --------------------------------------------------
META = frozenset("\\^$.|?*+()[]{}")
ESCAPABLE = META | frozenset("/")  # what ECMA-262 with the u flag lets one escape outside a class
CLASS_ESCAPABLE = ESCAPABLE | frozenset("-")
CLASS_ESCAPES = frozenset("dDwWsS")


class _PatternError(Exception):
    pass


class _Pattern:
    """Recursive-descent reader of the pattern grammar of PROTOCOL.md §18.3 (judges, never matches)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.quantifiers = 0

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def take(self) -> str:
        c = self.s[self.i]
        self.i += 1
        return c

    def fail(self, message: str) -> _PatternError:
        return _PatternError(f"{message} at offset {self.i}")

    def whole(self) -> None:
        if self.peek() == "^":
            self.i += 1
        self.alternation(depth=0)
        if self.peek() == "$":
            self.i += 1
        if self.i != len(self.s):
            raise self.fail(f"unexpected {self.s[self.i]!r}")

    def alternation(self, depth: int) -> tuple[bool, bool]:
        """(holds a quantifier, holds an alternation)."""
        quant, alt = self.sequence(depth)
        while self.peek() == "|":
            self.i += 1
            alt = True
            q, a = self.sequence(depth)
            quant = quant or q
        return quant, alt

    def sequence(self, depth: int) -> tuple[bool, bool]:
        quant = alt = False
        while True:
            c = self.peek()
            if c is None or c in "|)":
                return quant, alt
            if c == "$":
                if depth == 0 and self.i == len(self.s) - 1:
                    return quant, alt
                raise self.fail("'$' is allowed only at the end")
            inner_quant, inner_alt = self.atom(depth)
            quant = quant or inner_quant
            alt = alt or inner_alt
            most = self.quantifier()
            if most is not None:
                if most > 1 and (inner_quant or inner_alt):
                    raise self.fail("a group repeated more than once must not hold a quantifier or '|' "
                                    "(nested quantifiers)")
                quant = True

    def atom(self, depth: int) -> tuple[bool, bool]:
        c = self.take()
        if c == "(":
            if self.peek() == "?":
                raise self.fail("'(?' groups (look-around, named, non-capturing) are not allowed")
            if depth >= 4:
                raise self.fail("groups nest at most 4 deep")
            res = self.alternation(depth + 1)
            if self.peek() != ")":
                raise self.fail("unclosed '('")
            self.i += 1
            return res
        if c == "[":
            self.char_class()
        elif c == "\\":
            self.escape(in_class=False)
        elif c == "^":
            raise self.fail("'^' is allowed only at the start")
        elif c in META and c != ".":
            raise self.fail(f"{c!r} must be escaped")
        return False, False

    def escape(self, *, in_class: bool) -> str | None:
        """The escaped character, or None for a class escape (\\d, \\w, ...)."""
        c = self.peek()
        if c is None:
            raise self.fail("a trailing '\\'")
        self.i += 1
        if c in CLASS_ESCAPES:
            return None
        allowed = CLASS_ESCAPABLE if in_class else ESCAPABLE
        if c in allowed:
            return c
        where = "" if in_class else "; \\- only inside [...]"
        raise self.fail(f"'\\{c}' is not an allowed escape (allowed: \\d \\D \\w \\W \\s \\S and \\ before one of "
                        f"{''.join(sorted(allowed))}{where})")

    def class_char(self) -> str | None:
        c = self.peek()
        if c is None:
            raise self.fail("unclosed '['")
        if c == "\\":
            self.i += 1
            return self.escape(in_class=True)
        if c == "[":
            raise self.fail("'[' inside a class must be escaped")
        self.i += 1
        return c

    def char_class(self) -> None:
        if self.peek() == "^":
            self.i += 1
        items = 0
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("unclosed '['")
            if c == "]":
                if items == 0:
                    raise self.fail("an empty class '[]'")
                self.i += 1
                return
            lo = self.class_char()
            items += 1
            if self.peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                self.i += 1
                hi = self.class_char()
                if lo is None or hi is None:
                    raise self.fail("a range bound must be a single character")
                if ord(lo) > ord(hi):
                    raise self.fail(f"range {lo}-{hi} is out of order")

    def number(self) -> int:
        start = self.i
        while self.peek() is not None and self.peek() in "0123456789":
            self.i += 1
        digits = self.s[start:self.i]
        if not digits or len(digits) > 4:
            raise self.fail("a repetition count must be 1 to 4 digits")
        return int(digits)

    def quantifier(self) -> int | None:
        """The most repetitions the quantifier here allows (MAX_REPEAT + 1 for unbounded), or None."""
        c = self.peek()
        if c is None or c not in "?*+{":
            return None
        self.i += 1
        most = 1 if c == "?" else MAX_REPEAT + 1
        if c == "{":
            lo = self.number()
            hi = lo
            if self.peek() == ",":
                self.i += 1
                hi = self.number() if self.peek() != "}" else MAX_REPEAT
            if self.peek() != "}":
                raise self.fail("unclosed '{'")
            self.i += 1
            if lo > hi or hi > MAX_REPEAT:
                raise self.fail(f"a repetition {{m,n}} needs m <= n <= {MAX_REPEAT}")
            most = hi
        self.quantifiers += 1
        if self.quantifiers > MAX_QUANTIFIERS:
            raise self.fail(f"more than {MAX_QUANTIFIERS} quantifiers")
        nxt = self.peek()
        if nxt is not None and nxt in "?*+{":
            raise self.fail("a quantifier cannot follow a quantifier (no lazy or possessive forms)")
        return most


def pattern_problem(text: object) -> str | None:
    """Why ``text`` is not a pattern of the safe subset (PROTOCOL.md §18.3), or None."""
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_PATTERN:
        return f"must be a string of 1 to {MAX_PATTERN} characters"
    if any(not " " <= ch <= "~" for ch in text):
        return "must be printable ASCII"
    try:
        _Pattern(text).whole()
    except _PatternError as exc:
        return str(exc)
    return None


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
            ok = (isinstance(v, str) and not blank(v) and len(v) <= MAX_ENUM_STRING) if t == "string" else \
                _int(v) if t == "integer" else isinstance(v, bool)
            if not ok:
                raise _bad(f"{w}.enum values must be of type {t}"
                           + (f" (1 to {MAX_ENUM_STRING} characters)" if t == "string" else ""), w)
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
