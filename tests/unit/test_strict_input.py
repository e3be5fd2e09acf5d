"""Siblings of the lone-surrogate defect: inputs that a loose reading accepted and a second
implementation (or a later stage) would not — trailing newlines under `$`, white space by the
Unicode tables of one Python, strings that cannot be stored."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.core import changeset as csmod
from pocsync.core import hlc, jsonc, model
from pocsync.core import manifest as mf
from pocsync.core.replica import MemoryState, Replica
from pocsync.errors import ChangeSetError, EntryError, MalformedJSON
from tests.support.data import entry
from tests.support.fed import T0, Fed


def test_patterns_do_not_accept_a_trailing_newline() -> None:
    assert not hlc.is_hlc("1763800000123-0000\n")
    with pytest.raises(EntryError):
        model.parse_key("DEU\n/technical")
    assert not mf.NODE_ID_RE.match("eu\n") and not mf.KEY_NAME_RE.match("k1\n")
    assert not csmod.ID_RE.match("sha256:" + "0" * 64 + "\n")


def test_changeset_fields_with_a_trailing_newline_are_bad_changesets() -> None:
    ok = dict(
        origin="eu",
        seq=2,
        prev="sha256:" + "0" * 64,
        hlc="1763800000123-0000",
        manifest=1,
        author="a",
        ops=[{"op": "delete", "key": "DEU/technical"}],
    )
    csmod.build_payload(**ok)
    for field, value in (("prev", ok["prev"] + "\n"), ("hlc", ok["hlc"] + "\n"), ("origin", "eu\n")):
        with pytest.raises(ChangeSetError):
            csmod.build_payload(**{**ok, field: value})


@pytest.mark.parametrize("space", ["", " ", "\u3000", "\u2028", "\x85 \t"])
def test_blank_is_a_closed_list_of_white_space(space: str) -> None:
    assert model.blank(space)
    with pytest.raises(EntryError) as err:
        model.check_structure(
            "DEU/technical", entry("DEU/technical", organisation=space, full=True), cs_hlc="9" * 13 + "-9999"
        )
    assert err.value.reason == "missing_organisation"
    with pytest.raises(ChangeSetError):
        csmod.build_payload(
            origin="eu",
            seq=1,
            prev=None,
            hlc="1763800000123-0000",
            manifest=1,
            author=space,
            ops=[{"op": "delete", "key": "DEU/technical"}],
        )


def test_zero_width_and_format_characters_are_not_white_space() -> None:
    for text in ("\u200b", "\ufeff", "\u180e"):
        assert not model.blank(text)


def test_nothing_is_signed_that_a_receiver_refuses_as_json() -> None:
    with pytest.raises(MalformedJSON) as err:
        jsonc.dumps({"notes": "\udc00"})
    assert err.value.reason == "lone_surrogate"
    with pytest.raises(MalformedJSON) as err:
        jsonc.dumps({"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})
    assert err.value.reason == "too_deep"


def test_origin_cannot_put_a_lone_surrogate_and_nothing_is_stored() -> None:
    fed = Fed()
    rep = Replica(MemoryState(), fed.manifest)
    with pytest.raises(MalformedJSON):
        rep.edit(
            [{"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical", notes="\ud800", full=True)}],
            me="eu",
            key=fed.key("eu"),
            author="a",
            now_ms=T0,
        )
    assert not rep.state.log


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet='[]{}"\\ab,:', max_size=40))
def test_nesting_depth_matches_the_documented_scanner_for_any_text(text: str) -> None:
    from tests.independent.protocol import _depth

    assert jsonc.nesting_depth(text) == _depth(text)


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=30,
    )
)
def test_nesting_depth_of_json_is_its_container_depth(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, (list, dict)):
            return 1 + max((depth(x) for x in (v.values() if isinstance(v, dict) else v)), default=0)
        return 0

    text = jsonc.dumps(value).decode()
    assert jsonc.nesting_depth(text) == depth(value)
    assert jsonc.loads(text) == value


def test_a_token_with_a_lone_surrogate_never_reaches_a_store_lookup() -> None:
    """Sibling in the API: the unverified `sub` of a token is looked up in the store before
    verification; a lone surrogate there made SQLite fail (HTTP 500).  Token parts are strict JSON."""
    import base64
    import json

    from pocsync import tokens

    def part(obj: str) -> str:
        return base64.urlsafe_b64encode(obj.encode()).decode().rstrip("=")

    bad = ".".join([part(json.dumps({"alg": "ES256", "kid": "eu:t1"})), part('{"sub": "DEU/\\ud800"}'), "x"])
    assert tokens.unverified_subject(bad) is None
    with pytest.raises(tokens.TokenError) as err:
        tokens.unverified_parts(bad)
    assert err.value.reason == "malformed"
