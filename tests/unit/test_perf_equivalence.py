"""The fast paths of issue 13 give exactly what the plain ones give (Hypothesis tries the hard cases)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.core import changeset as csmod
from pocsync.core import jsonc
from pocsync.errors import PocsyncError

BRACKETY = st.text(alphabet='[]{}"\\au\n ', max_size=400)


@settings(max_examples=3000)
@given(BRACKETY)
def test_nesting_depth_is_the_token_walk(text: str) -> None:
    assert jsonc.nesting_depth(text) == jsonc._nesting_depth_slow(text)


def _reference_loads(text: str):
    value = json.loads(text)
    problems = jsonc._Problems()
    jsonc._strings(value, problems)

    def keys(v):
        if isinstance(v, dict):
            for k, x in v.items():
                problems.surrogates(k, "an object key")
                keys(x)
        elif isinstance(v, list):
            for x in v:
                keys(x)

    keys(value)
    problems.raise_first()
    return value


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFFFF)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFFFF), max_size=4), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=1500)
@given(JSONISH, st.booleans())
def test_surrogate_fast_path_refuses_exactly_what_the_full_check_refuses(value, ascii_: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_)  # escaped (\\ud800) or raw lone surrogates in a str
    try:
        expected = ("ok", _reference_loads(text))
    except PocsyncError as exc:
        expected = ("refused", exc.reason)
    try:
        got = ("ok", jsonc.loads(text))
    except PocsyncError as exc:
        got = ("refused", exc.reason)
    assert got == expected
    if ascii_:  # the same text as bytes (the way envelopes and payloads arrive)
        try:
            got = ("ok", jsonc.loads(text.encode()))
        except PocsyncError as exc:
            got = ("refused", exc.reason)
        assert got == expected


def test_a_peeked_parse_is_used_once_and_only_for_the_same_bytes() -> None:
    x, y = bytes(bytearray(b"x" * 10)), bytes(bytearray(b"x" * 10))
    csmod._local.peeked = (x, 5, "env", "obj")
    assert csmod._take_peeked(y, 5) is None  # equal bytes, other object: not shared
    assert csmod._take_peeked(x, 6) is None  # other cap: not shared
    assert csmod._take_peeked(x, 5) == ("env", "obj")
    assert csmod._take_peeked(x, 5) is None  # handed out once
