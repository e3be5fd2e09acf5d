"""Templates as signed federation documents (PROTOCOL.md §18, ADRs 33-34).

The op kind `template` (feature `templates`): the document's receipt rules (one refusal per rule,
with a clear message), the publisher rule (the origin refuses before signing what peers refuse),
and the merge (greatest (version, hlc, origin, change-set id, op index)) in any order with
duplicates.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import manifest as mf
from pocsync.core import opkinds
from pocsync.core import templates as tpl
from pocsync.core.changeset import changeset_id
from pocsync.core.envelope import parse as parse_env
from pocsync.core.replica import MemoryState, Replica
from pocsync.directory.shipped_templates import shipped
from pocsync.errors import EntryError, ManifestError
from tests.support.fed import T0, Fed, edit, edit_unchecked

FED = Fed()
M_OFF = FED.manifest
M_ON = FED.signed(mf.set_features(mf.next_version(M_OFF.payload), ["templates"]))
M_TWO = FED.signed(mf.set_policy(mf.next_version(M_ON.payload), "templates", {"publishers": ["osce", "un"]}))
LATER = T0 + 86_400_000


def doc(**over: Any) -> dict[str, Any]:
    d = copy.deepcopy(shipped()["request-for-information"])
    d.update(over)
    return d


def op(d: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
    d = d if d is not None else doc()
    return {"op": "template", "key": key if key is not None else d.get("id"), "template": d}


# --- the shipped templates -------------------------------------------------------------------
def test_shipped_templates_are_valid_in_three_languages() -> None:
    docs = shipped()
    assert {"request-for-assistance", "notice-of-malicious-activity", "request-for-information", "reply"} <= set(docs)
    assert {d["purpose"] for d in docs.values()} == set(tpl.PURPOSES)
    for tid, d in docs.items():
        assert tpl.check_document(d) is d and d["id"] == tid
        assert {"en", "fr", "es"} <= set(d["languages"])
        for lang in d["languages"].values():  # every property labelled, every enum value too
            assert set(lang["fields"]) == set(d["schema"]["properties"])
            for name, f in lang["fields"].items():
                if "enum" in d["schema"]["properties"][name]:
                    assert set(f["options"]) == set(d["schema"]["properties"][name]["enum"])
        # the French and Spanish texts are translations, not copies of the English
        assert d["languages"]["fr"]["title"] != d["languages"]["en"]["title"] != d["languages"]["es"]["title"]


# --- one refusal per rule, each with a clear message ----------------------------------------
def _schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _langs(names: list[str], **over: Any) -> dict[str, Any]:
    out = {
        c: {"title": f"T {c}", "text": f"Text {c}", "fields": {n: {"label": f"{n} {c}"} for n in names}}
        for c in ("en", "fr", "es")
    }
    out.update(over)
    return out


def small(schema: dict[str, Any], **over: Any) -> dict[str, Any]:
    d = {
        "id": "t1",
        "version": 1,
        "purpose": "reply",
        "schema": schema,
        "languages": _langs(list(schema.get("properties", {})) if isinstance(schema.get("properties"), dict) else []),
    }
    d.update(over)
    return d


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [], "must be a JSON object"),
    ("unknown member", small(_schema(a={"type": "string"}), extra=1), "unknown members ['extra']"),
    ("bad id", small(_schema(a={"type": "string"}), id="Bad Id"), "id must match"),
    ("version 0", small(_schema(a={"type": "string"}), version=0), "version must be an integer"),
    ("version bool", small(_schema(a={"type": "string"}), version=True), "version must be an integer"),
    ("purpose", small(_schema(a={"type": "string"}), purpose="gossip"), "purpose must be one of"),
    (
        "no schema",
        {k: v for k, v in small(_schema(a={"type": "string"})).items() if k != "schema"},
        "schema is missing",
    ),
    ("schema type", small({"type": "array", "properties": {"a": {"type": "string"}}}), 'schema.type must be "object"'),
    (
        "$ref",
        small({"type": "object", "properties": {"a": {"type": "string"}}, "$ref": "https://example.org/x"}),
        "schema has unknown members ['$ref']",
    ),
    ("$ref in a property", small(_schema(a={"$ref": "#/x"})), "unknown members ['$ref']"),
    ("no properties", small({"type": "object", "properties": {}}), "1 to 64 properties"),
    ("property name", small(_schema(**{"A b": {"type": "string"}})), "property name 'A b' must match"),
    ("property type", small(_schema(a={"type": "number"})), "type must be one of"),
    ("object property", small(_schema(a={"type": "object"})), "type must be one of"),
    ("maxLength on integer", small(_schema(a={"type": "integer", "maxLength": 3})), "maxLength applies only"),
    ("maxLength too big", small(_schema(a={"type": "string", "maxLength": 10_001})), "maxLength must be an integer"),
    ("enum of the wrong type", small(_schema(a={"type": "integer", "enum": [1, "2"]})), "enum values must be"),
    ("enum empty", small(_schema(a={"type": "string", "enum": []})), "enum must be a list of 1 to"),
    ("enum repeated", small(_schema(a={"type": "string", "enum": ["x", "x"]})), "enum values must be distinct"),
    ("enum of objects", small(_schema(a={"type": "string", "enum": [{"x": 1}]})), "enum values must be"),
    ("format", small(_schema(a={"type": "string", "format": "uri"})), "format must be one of"),
    (
        "required not a property",
        small({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}),
        "schema.required names ['b']",
    ),
    (
        "required repeated",
        small({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "a"]}),
        "must not repeat",
    ),
    ("pattern too long", small(_schema(a={"type": "string", "pattern": "a" * 201})), "1 to 200 characters"),
    ("pattern backreference", small(_schema(a={"type": "string", "pattern": "(a)\\1"})), "not an allowed escape"),
    ("pattern look-ahead", small(_schema(a={"type": "string", "pattern": "(?=a)"})), "look-around"),
    ("pattern nested quantifier", small(_schema(a={"type": "string", "pattern": "^(a+)+$"})), "nested quantifiers"),
    ("pattern alternation repeated", small(_schema(a={"type": "string", "pattern": "(a|aa)*"})), "nested quantifiers"),
    ("pattern unbalanced", small(_schema(a={"type": "string", "pattern": "(ab"})), "unclosed '('"),
    ("pattern non-ASCII", small(_schema(a={"type": "string", "pattern": "é"})), "printable ASCII"),
    ("pattern lazy", small(_schema(a={"type": "string", "pattern": "a+?"})), "cannot follow a quantifier"),
    ("pattern repeat", small(_schema(a={"type": "string", "pattern": "a{1,5000}"})), "m <= n <= 1000"),
    ("pattern on boolean", small(_schema(a={"type": "boolean", "pattern": "a"})), "pattern applies only"),
    (
        "missing language",
        small(_schema(a={"type": "string"}), languages={k: v for k, v in _langs(["a"]).items() if k != "es"}),
        "missing: ['es']",
    ),
    (
        "language code",
        small(_schema(a={"type": "string"}), languages=_langs(["a"], EN=_langs(["a"])["en"])),
        "two lower-case letters",
    ),
    (
        "missing title",
        small(
            _schema(a={"type": "string"}), languages=_langs(["a"], fr={"text": "x", "fields": {"a": {"label": "a"}}})
        ),
        "languages.fr.title must be a string",
    ),
    (
        "blank text",
        small(
            _schema(a={"type": "string"}),
            languages=_langs(["a"], es={"title": "x", "text": " \u3000", "fields": {"a": {"label": "a"}}}),
        ),
        "languages.es.text must be a string",
    ),
    (
        "missing label",
        small(
            _schema(a={"type": "string"}, b={"type": "string"}), languages=_langs(["a"], en=_langs(["a", "b"])["en"])
        ),
        "has no label for ['b']",
    ),
    (
        "extra label",
        small(_schema(a={"type": "string"}), languages=_langs(["a"], en=_langs(["a", "z"])["en"])),
        "names ['z'], which schema.properties",
    ),
    (
        "options without enum",
        small(
            _schema(a={"type": "string"}),
            languages=_langs(
                ["a"], en={"title": "t", "text": "x", "fields": {"a": {"label": "a", "options": {"x": "X"}}}}
            ),
        ),
        "options applies only",
    ),
    (
        "options incomplete",
        small(
            _schema(a={"type": "string", "enum": ["x", "y"]}),
            languages=_langs(
                ["a"], en={"title": "t", "text": "x", "fields": {"a": {"label": "a", "options": {"x": "X"}}}}
            ),
        ),
        "a label for each enum value",
    ),
    (
        "oversize",
        small(
            _schema(a={"type": "string"}),
            languages=_langs(
                ["a"], **{c: {"title": "t", "text": "x" * 20_000, "fields": {"a": {"label": "a"}}} for c in "abcd"}
            ),
        ),
        "the cap is 65536",
    ),
]


@pytest.mark.parametrize("name,document,message", BAD, ids=[b[0] for b in BAD])
def test_each_malformed_template_is_refused_with_a_clear_message(name: str, document: Any, message: str) -> None:
    with pytest.raises(EntryError) as err:
        tpl.check_document(document)
    assert err.value.reason == "bad_template"
    assert message in err.value.message, err.value.message


def test_the_op_key_must_be_the_template_id() -> None:
    opkinds.KINDS["template"].check(op(doc()), "x", {})
    with pytest.raises(EntryError, match="differs from the op's key"):
        opkinds.KINDS["template"].check(op(doc(), key="other-id"), "x", {})


GOOD_PATTERNS = [
    "^[A-Z]{3}-[0-9]{4,6}$",
    "[a-z0-9._-]+",
    "\\d+(\\.\\d+)?",
    "^(ab|cd)$",
    "(ab)+",
    "a{2,}",
    "^[^\\s@]+@[^\\s@]+$",
    "\\$\\^\\(\\)\\[\\]\\{\\}\\|\\\\",
]


@pytest.mark.parametrize("pattern", GOOD_PATTERNS)
def test_safe_patterns_are_accepted_and_compile(pattern: str) -> None:
    assert tpl.pattern_problem(pattern) is None
    re.compile(pattern)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab^$.|?*+()[]{}\\-,0123dsw")), max_size=24))
def test_every_accepted_pattern_compiles(pattern: str) -> None:
    """The grammar is a subset of what regular-expression engines read: whatever it accepts compiles."""
    if tpl.pattern_problem(pattern) is None:
        re.compile(pattern)


# --- the publisher rule, at the origin and at peers ------------------------------------------
def test_feature_off_refuses_the_op() -> None:
    rep = Replica(MemoryState(), M_OFF)
    with pytest.raises(EntryError) as err:
        edit(rep, FED, "un", [op()])
    assert err.value.detail["refusals"][0]["reason"] == "feature_off"


def test_un_node_publishes_and_every_peer_holds_the_same_template() -> None:
    origin = Replica(MemoryState(), M_ON)
    out = edit(origin, FED, "un", [op()])
    assert not out.refused
    peer = Replica(MemoryState(), M_ON)
    peer.receive(origin.state.all_log()[0], now_ms=LATER)
    assert peer.state.digest() == origin.state.digest()
    rec = peer.state.record("template", "request-for-information")
    assert rec is not None and rec.entry["template"] == doc()
    assert any(line[0] == "template" for line in peer.state.digest_view())


def test_a_regional_template_is_refused_before_signing_and_by_peers() -> None:
    origin = Replica(MemoryState(), M_ON)
    with pytest.raises(EntryError) as err:
        edit(origin, FED, "eu", [op()])
    assert "nothing was signed" in err.value.message and "eu may not publish templates" in err.value.message
    assert err.value.detail["refusals"][0]["reason"] == "out_of_scope"
    assert origin.state.all_log() == []
    # a hostile regional node signs it anyway: every peer refuses it, nothing takes effect
    hostile = Replica(MemoryState(), M_ON)
    out = edit_unchecked(hostile, FED, "eu", [op()])
    assert [(r.reason, r.op) for r in out.refused] == [("out_of_scope", "template")]
    peer = Replica(MemoryState(), M_ON)
    assert peer.receive(hostile.state.all_log()[0], now_ms=LATER).refused[0].reason == "out_of_scope"
    assert peer.state.record("template", "request-for-information") is None


def test_a_malformed_template_is_refused_before_signing() -> None:
    origin = Replica(MemoryState(), M_ON)
    bad = doc()
    del bad["languages"]["es"]
    with pytest.raises(EntryError) as err:
        edit(origin, FED, "un", [op(bad)])
    assert err.value.reason == "bad_template" and "missing: ['es']" in err.value.message
    assert origin.state.all_log() == []


def test_policy_publishers_replace_the_role_default() -> None:
    rep = Replica(MemoryState(), M_TWO)
    assert not edit(rep, FED, "osce", [op()]).refused
    assert not edit(rep, FED, "un", [op(doc(version=2))]).refused
    with pytest.raises(EntryError, match=r"policy.templates.publishers lists \['osce', 'un'\]"):
        edit(rep, FED, "arf", [op()])
    only_osce = FED.signed(mf.set_policy(mf.next_version(M_TWO.payload), "templates", {"publishers": ["osce"]}))
    rep.reevaluate(now_ms=LATER, manifest=only_osce)  # the un node's version 2 no longer takes effect
    assert rep.state.record("template", "request-for-information").origin == "osce"


@pytest.mark.parametrize(
    "value",
    [
        {"publishers": "un"},
        {"publishers": ["un", "osce"]},
        {"publishers": ["UN"]},
        {"publishers": ["un", "un"]},
        {"who": ["un"]},
        {"publishers": None},
    ],
)
def test_bad_template_policy_is_refused(value: Any) -> None:
    with pytest.raises(ManifestError):
        opkinds.parse_policy({"templates": value}, frozenset({"templates"}))


# --- the merge: greatest (version, hlc, origin, change-set id, op index), in any order ----------
action = st.tuples(
    st.sampled_from(["un", "osce", "eu"]),
    st.sampled_from(["request-for-information", "reply"]),
    st.integers(1, 3),
    st.integers(0, 2),
    st.booleans(),
)


def history(actions: list[tuple[str, str, int, int, bool]]) -> list[bytes]:
    heads: dict[str, tuple[int, str | None]] = {}
    out = []
    clock = T0
    for origin, tid, version, dt, bad in actions:
        clock += dt  # equal hlcs across origins are frequent: the tie goes to (origin, id, index)
        d = doc(id=tid, version=version)
        if bad:
            d["languages"]["fr"]["fields"] = {}
        seq, prev = heads.get(origin, (0, None))
        env = FED.forge(origin, seq=seq + 1, prev=prev, hlc=f"{clock:013d}-0000", ops=[op(d)])
        heads[origin] = (seq + 1, changeset_id(parse_env(env, max_bytes=1 << 20).payload))
        out.append(env)
    return out


def run(manifest: mf.Manifest, envs: list[bytes]) -> Replica:
    rep = Replica(MemoryState(), manifest)
    for e in envs:
        rep.receive(e, now_ms=LATER)
    return rep


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=10), data=st.data())
def test_two_publishers_resolve_deterministically_in_any_order(actions, data) -> None:
    envs = history(actions)
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=4))))
    for manifest in (M_OFF, M_ON, M_TWO):
        ref, other = run(manifest, envs), run(manifest, order)
        assert other.state.digest() == ref.state.digest()
        assert other.state.refusals == ref.state.refusals
    rep = run(M_TWO, order)
    for tid in ("request-for-information", "reply"):
        cands = []
        for env in envs:
            payload = json.loads(parse_env(env, max_bytes=1 << 20).payload)
            o = payload["ops"][0]
            if o["key"] == tid and payload["origin"] in ("un", "osce") and o["template"]["languages"]["fr"]["fields"]:
                cands.append(
                    (
                        o["template"]["version"],
                        payload["hlc"],
                        payload["origin"],
                        changeset_id(parse_env(env, max_bytes=1 << 20).payload),
                        0,
                    )
                )
        rec = rep.state.record("template", tid)
        if not cands:
            assert rec is None
            continue
        best = max(cands)
        assert rec is not None and (rec.entry["template"]["version"], rec.hlc, rec.origin, rec.cs_id, rec.index) == best
    assert all(r.reason in ("out_of_scope", "bad_template") for r in rep.state.refusals.values())


def test_a_higher_version_wins_over_a_later_hlc() -> None:
    envs = history([("un", "reply", 2, 0, False), ("osce", "reply", 1, 2, False)])
    rep = run(M_TWO, list(reversed(envs)))
    rec = rep.state.record("template", "reply")
    assert rec.origin == "un" and rec.entry["template"]["version"] == 2


# --- differential: pocsync and the independent reading of PROTOCOL.md §18 agree -------------------------
PATTERN_ALPHABET = st.sampled_from(list("ab-^$.|?*+()[]{}\\,0123/dsw ") + ["\\-", "\\d", "{1,2}", "{2}", "[a-z]"])


@settings(max_examples=1500, deadline=None)
@given(st.lists(PATTERN_ALPHABET, min_size=1, max_size=16).map("".join))
def test_patterns_judged_alike_by_pocsync_and_the_independent_reading(pattern: str) -> None:
    from tests.independent import protocol as indep

    assert (tpl.pattern_problem(pattern) is None) == indep.safe_pattern(pattern), pattern


def _mutations() -> st.SearchStrategy:
    base = shipped()["reply"]
    paths = []

    def walk(node: Any, path: tuple) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(base, ())
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-2, 20_000),
        st.sampled_from(
            [
                "",
                " ",
                "x",
                "string",
                "integer",
                "object",
                "email",
                "uri",
                "date-time",
                "^a+$",
                "(a+)+",
                "reply",
                "en",
                "EN",
                "x" * 201,
                "$ref",
            ]
        ),
        st.just([]),
        st.just({}),
        st.just(["x", "x"]),
        st.just({"label": "L"}),
    )
    return st.lists(
        st.tuples(
            st.sampled_from(paths),
            st.sampled_from(["set", "delete", "add"]),
            values,
            st.sampled_from(["extra", "$ref", "help", "options", "required", "de", "zz_1"]),
        ),
        min_size=1,
        max_size=3,
    ).map(lambda muts: (base, muts))


def _apply(base: dict, muts: list) -> dict:
    d = copy.deepcopy(base)
    for path, how, value, name in muts:
        parent, node = None, d
        try:
            for p in path:
                parent, node = node, node[p]
        except (KeyError, IndexError, TypeError):
            continue
        value = copy.deepcopy(value)
        if how == "add" and isinstance(node, dict):
            node[name] = value
        elif how == "delete" and parent is not None and isinstance(parent, (dict, list)):
            del parent[path[-1]]
        elif how == "set" and parent is not None:
            parent[path[-1]] = value
    return d


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_documents_judged_alike_by_pocsync_and_the_independent_reading(case) -> None:
    from tests.independent import protocol as indep

    d = _apply(*case)
    o = {"op": "template", "key": "reply", "template": d}
    try:
        tpl.check_op(o)
        mine = None
    except EntryError as exc:
        mine = exc.reason
    assert mine == indep.template_refusal(o), d


M_NOBODY = FED.signed(mf.set_policy(mf.next_version(M_TWO.payload), "templates", {"publishers": []}))
CHAIN = [M_OFF, M_ON, M_TWO, M_NOBODY]


diff_action = st.tuples(
    st.sampled_from(["un", "un", "osce", "eu"]),
    st.sampled_from(["request-for-information", "reply"]),
    st.integers(1, 3),
    st.integers(0, 2),
    st.sampled_from([False, False, False, True]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(actions=st.lists(diff_action, min_size=1, max_size=8), upto=st.integers(0, len(CHAIN) - 1), data=st.data())
def test_template_ops_in_any_order_with_manifest_changes_agree_with_the_independent_reading(
    actions, upto: int, data
) -> None:
    """Template ops of three origins (valid and not), delivered in any order with duplicates, interleaved
    with manifest installs (feature off, on with the role default, publishers [osce, un], publishers []):
    refusals and digest lines equal the independent reading's under the last manifest."""
    from pocsync.core.merge import digest_lines
    from tests.independent import protocol as indep

    envs = history(actions)
    order = data.draw(st.permutations(envs + data.draw(st.lists(st.sampled_from(envs), max_size=3))))
    at = sorted(data.draw(st.lists(st.integers(0, len(order)), min_size=upto, max_size=upto)))
    rep = Replica(MemoryState(), CHAIN[0])
    version = 0
    for i, env in enumerate(order):
        while version < upto and at[version] <= i:
            version += 1
            rep.reevaluate(now_ms=LATER, manifest=CHAIN[version])
        rep.receive(env, now_ms=LATER)
    while version < upto:
        version += 1
        rep.reevaluate(now_ms=LATER, manifest=CHAIN[version])
    ir = indep.Replica(indep.manifest(CHAIN[upto].to_bytes()))
    for env in envs:
        ir.receive(env, LATER)
    refused, lines = ir.refused_and_lines()
    assert sorted([r.origin, r.seq, r.index, r.reason] for r in rep.state.refusals.values()) == refused
    assert digest_lines(rep.state.digest_view()).decode() == lines
