"""Attacks on the issue-11 fixes (helper attack11): each test failed before its fix."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pocsync import tokens
from pocsync.directory import exports
from pocsync.ops import logs
from pocsync.store import Store
from pocsync.store import sqlite as sq
from tests.support.fed import T0, Fed, put

NOW_S = T0 // 1000


@pytest.fixture()
def fed() -> Fed:
    return Fed()


def make_store(tmp_path: Path, fed: Fed, node: str = "eu") -> Store:
    s = Store.create(tmp_path / f"{node}-{len(list(tmp_path.iterdir()))}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    return s


def parked_of(store: Store, origin: str) -> tuple[int, int]:
    r = store.conn.execute(
        "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM parked WHERE origin=?", (origin,)
    ).fetchone()
    return r[0], r[1]


# --- store growth by a member's signed-but-false claims -----------------------------------------------
def test_a_member_signing_far_ahead_of_its_chain_cannot_grow_the_parking_lot_without_bound(
    tmp_path: Path, fed: Fed
) -> None:
    """osce (a member, its own key) signs change-sets at seqs it never fills: each verifies and is parked
    as ``gap``.  They are bounded per origin; the ones nearest the chain's head are kept."""
    eu = make_store(tmp_path, fed)
    n = sq.MAX_PARKED_PER_ORIGIN + 40
    for i in range(n):
        data = fed.forge(
            "osce",
            seq=1_000 + i,
            prev="sha256:" + "0" * 64,
            hlc=f"{T0 + i:013d}-0000",
            ops=[put("DEU/technical", notes="x" * 200)],
        )
        out = eu.receive(data, source="mqtt", now_ms_=T0)
        assert (out.status, out.reason) == ("parked", "gap")
    count, size = parked_of(eu, "osce")
    assert count <= sq.MAX_PARKED_PER_ORIGIN and size <= sq.MAX_PARKED_BYTES_PER_ORIGIN
    kept = [r[0] for r in eu.conn.execute("SELECT seq FROM parked WHERE origin='osce' ORDER BY seq")]
    assert kept[0] == 1_000  # the nearest to the head stay; the farthest were dropped
    # an honest origin's parked change-sets are untouched by osce's flood
    eu_data = fed.forge("arf", seq=5, prev="sha256:" + "1" * 64, hlc=f"{T0:013d}-0000", ops=[put("JPN/technical")])
    assert eu.receive(eu_data, source="mqtt", now_ms_=T0).reason == "gap"
    assert parked_of(eu, "arf")[0] == 1


def test_a_member_signing_in_the_future_cannot_grow_the_parking_lot_either(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed)
    ahead = T0 + 10 * 86_400_000
    prev = None
    for i in range(sq.MAX_PARKED_PER_ORIGIN + 20):
        data = fed.forge(
            "osce",
            seq=1 + i if i == 0 else 1_000 + i,
            prev=prev if i == 0 else "sha256:" + "0" * 64,
            hlc=f"{ahead + i:013d}-0000",
            ops=[put("DEU/technical")],
        )
        eu.receive(data, source="mqtt", now_ms_=T0)
    assert parked_of(eu, "osce")[0] <= sq.MAX_PARKED_PER_ORIGIN


def test_memory_state_bounds_a_members_verified_parking_alike(fed: Fed) -> None:
    from pocsync.core import replica as rmod

    rep = fed.replica()
    for i in range(rmod.MAX_PARKED_PER_ORIGIN + 5):
        rep.receive(
            fed.forge(
                "osce", seq=1_000 + i, prev="sha256:" + "0" * 64, hlc=f"{T0 + i:013d}-0000", ops=[put("DEU/technical")]
            ),
            now_ms=T0,
        )
    seqs = sorted(p[1] for p in rep.state.parked.values() if p[0] == "osce")
    assert len(seqs) == rmod.MAX_PARKED_PER_ORIGIN and seqs[0] == 1_000


# --- tokens ----------------------------------------------------------------------------------------------
def _forge_token(fed: Fed, issuer: str, claims: dict) -> str:
    from cryptography.hazmat.primitives import serialization as ser
    from jose import jwt as josejwt

    pem = fed.token[issuer].private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()).decode()
    base = {
        "iss": issuer,
        "sub": "DEU/technical",
        "aud": "pocsync",
        "iat": NOW_S,
        "iat_ms": T0,
        "exp": NOW_S + 3600,
        "jti": "j",
        "scope": "directory",
    }
    return josejwt.encode(base | claims, pem, algorithm="ES256", headers={"kid": f"{issuer}:t1"})


def test_a_revoked_token_stays_revoked_whatever_the_length_of_its_jti(tmp_path: Path, fed: Fed) -> None:
    """The deny-list stored jti[:200] and looked up the whole jti: a token with a longer jti (any member may
    issue one) survived its renewal and sign-out.  Such a jti is now refused, and what is revoked is found."""
    eu = make_store(tmp_path, fed)
    eu.edit([put("DEU/technical")], key=fed.key("eu"), author="staff@eu", now_ms_=T0)
    tok = _forge_token(fed, "osce", {"jti": "J" * 300})
    try:
        c = tokens.verify_signature(tok, manifest=fed.manifest, now_s=NOW_S)
    except tokens.TokenError as exc:
        assert exc.reason == "malformed" and "jti" in exc.message
    else:  # if accepted, revoking it must work
        eu.revoke_token(c.jti, exp=c.exp, reason="renewed", now_s=NOW_S)
        assert eu.subject_state(c.subject, c.jti)["revoked"]
    eu.revoke_token("K" * 300, exp=NOW_S + 10, reason="signed_out", now_s=NOW_S)
    assert eu.is_revoked("K" * 300) and eu.subject_state("DEU/technical", "K" * 300)["revoked"]


def test_a_session_cookie_works_at_a_node_whose_scope_does_not_cover_the_subject(fed: Fed) -> None:
    """eu issues a token for DEU/technical; the PoC signs in at arf (scope JPN, IDN, AUS).  The cookie arf
    sets is arf's own session token: it must let the PoC in at arf (arf checked eu's token at sign-in)."""
    token = tokens.issue_token(
        issuer="eu",
        kid="eu:t1",
        key=fed.token["eu"],
        subject="DEU/technical",
        scope="directory",
        now_s=NOW_S,
        ttl_s=3600,
    )
    entry = {"state": "DEU", "kind": "technical", "holder_epoch": "0000000000001-0000"}
    lookup = lambda k: tokens.SubjectState(entry)  # noqa: E731
    c = tokens.TokenCache().verify(token, manifest=fed.manifest, now_s=NOW_S, lookup_entry=lookup)
    session = tokens.issue_token(
        issuer="arf",
        kid="arf:t1",
        key=fed.token["arf"],
        subject=c.subject,
        scope=c.scope,
        now_s=NOW_S,
        ttl_s=3600,
        audience=tokens.session_audience("arf"),
    )
    cache = tokens.TokenCache()
    got = cache.verify(
        session, manifest=fed.manifest, now_s=NOW_S, lookup_entry=lookup, audience=tokens.session_audience("arf")
    )
    assert got.subject == "DEU/technical"
    # but arf still cannot issue a bearer token for a State outside its scope
    forged = tokens.issue_token(
        issuer="arf",
        kid="arf:t1",
        key=fed.token["arf"],
        subject="DEU/technical",
        scope="directory",
        now_s=NOW_S,
        ttl_s=3600,
    )
    with pytest.raises(tokens.TokenError) as exc:
        tokens.TokenCache().verify(forged, manifest=fed.manifest, now_s=NOW_S, lookup_entry=lookup)
    assert exc.value.reason == "issuer_out_of_scope"


def test_key_deaths_do_not_depend_on_the_arrival_order_across_a_chain_restart(tmp_path: Path, fed: Fed) -> None:
    """eu deletes DEU/technical at seq 2; after a chain restart at seq 10 it re-lists it.  A node that got
    seq 10 before seq 2 skipped the delete's death (seq 2 is not eu's latest assertion there) and so let a
    token issued before the delete read again, while a node that got them in order refused it."""
    from pocsync.core import changeset as csmod
    from pocsync.core import manifest as mf

    pub = fed.new_key("eu", "k2")
    m2 = fed.signed(
        mf.restart_chain(mf.next_version(fed.manifest.payload), "eu", name="k2", public=pub, from_seq=10, prev=None)
    )
    s1 = fed.forge("eu", seq=1, prev=None, hlc=f"{T0:013d}-0000", ops=[put("DEU/technical")])
    id1 = csmod.peek_identity(s1, max_bytes=1 << 20)[0]
    s2 = fed.forge("eu", seq=2, prev=id1, hlc=f"{T0 + 2_000:013d}-0000", ops=[{"op": "delete", "key": "DEU/technical"}])
    s10 = fed.forge(
        "eu",
        seq=10,
        prev=None,
        hlc=f"{T0 + 5_000:013d}-0000",
        ops=[put("DEU/technical")],
        key=fed.key("eu", "k2"),
        keyid="eu:k2",
    )
    stores = []
    for order in ([s1, s2, s10], [s10, s1, s2], [s1, s10, s2]):
        s = make_store(tmp_path, fed, "osce")
        s.install_manifest(m2, now_ms_=T0)
        for data in order:
            assert s.receive(data, source="mqtt", now_ms_=T0 + 6_000).status == "accepted"
        stores.append(s)
    deaths = [s.subject_state("DEU/technical", None)["dead_since"] for s in stores]
    assert deaths == [f"{T0 + 2_000:013d}-0000"] * 3
    assert len({s.digest() for s in stores}) == 1
    tok = tokens.issue_token(
        issuer="eu",
        kid="eu:t1",
        key=fed.token["eu"],
        subject="DEU/technical",
        scope="directory",
        now_s=(T0 + 1_000) // 1000,
        now_ms=T0 + 1_000,
        ttl_s=3600,
    )
    for s in stores:
        found = s.subject_state("DEU/technical", None)
        st = tokens.SubjectState(found["entry"], found["dead_since"], found["revoked"])
        with pytest.raises(tokens.TokenError):
            tokens.TokenCache().verify(tok, manifest=m2, now_s=(T0 + 6_000) // 1000, lookup_entry=lambda k: st)


# --- renderers and logs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        '\n=HYPERLINK("http://evil.example/","x")',
        "\u3000=1+2",
        "\u2003@SUM(A1)",
        "  \n\n-2+3",
        "\ufeff=1+2",
        "\u00a0\n+1",
    ],
)
def test_a_formula_after_any_leading_white_space_is_guarded(value: str) -> None:
    """``notes`` may start with a line feed; other white space (ideographic, em space) is not a character a
    spreadsheet shows either: a formula after it is guarded like one at the start."""
    cell = exports.safe_cell(value, column="notes")
    assert cell.startswith("'")
    from pocsync_adapters.csv_table import _unguard

    assert _unguard(cell) == exports.safe_text(value, field="notes")  # the import gives the text back


def test_the_ldif_writer_treats_every_field_as_untrusted() -> None:
    """The LDIF writer (an adapter's writer) wrote NUL, bidi overrides and U+2028 as they came."""
    import base64

    from pocsync_adapters.ldif_file import LdifAdapter

    bad = "Ex\u202eample\x00 \u2028x\u2066"
    row = {
        "key": "DEU/technical",
        "origin": "eu",
        "hlc": f"{T0:013d}-0000",
        "cs_id": "x",
        "author": "a",
        "entry": {
            "state": "DEU",
            "kind": "technical",
            "organisation": bad,
            "position": bad,
            "person": bad,
            "notes": bad + "\nline two",
            "emails": ["a\u202e@example.org"],
            "phones": ["+49\x00"],
            "timezone": bad,
            "languages": ["en\u2028"],
            "networks": [bad],
            "extra_thing": bad,
        },
    }
    out = LdifAdapter().write([row])
    text = out.decode()
    decoded = [
        base64.b64decode(line.split(":: ", 1)[1]).decode()
        for line in text.replace("\n ", "").splitlines()
        if ":: " in line
    ]
    for s in [text, *decoded]:
        for ch in "\u202e\x00\u2028\u2066":
            assert ch not in s, (ch, s)
    assert any("line two" in s for s in decoded)  # notes keeps its line feed


def test_json_log_fields_are_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    jwt_like = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJERVUvdGVjaG5pY2FsIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    rec = logging.LogRecord("pocsync.sync", logging.WARNING, __file__, 1, "peer %s down", ("osce",), None)
    rec.fields = {
        "event": "peer_down",
        "error": f"GET https://osce.example/?access_token={jwt_like}: 401",
        "nested": {"h": f"Bearer {jwt_like}"},
    }
    line = logs.JsonLines().format(rec)
    assert jwt_like not in line and "[redacted]" in line
    assert json.loads(line)["event"] == "peer_down"


def test_a_repeated_refusal_keeps_the_quarantine_record_small(tmp_path: Path, fed: Fed) -> None:
    """The first refusal of an item stored its message cut at 1000 characters; a repeat stored the whole
    message, which quotes the item's (attacker-chosen, up to the envelope cap) keyid: each distinct blob
    sent twice cost ~200 KB, 500 rows a source."""
    import base64

    from pocsync.core import jsonc
    from pocsync.core.envelope import CHANGESET_TYPE

    eu = make_store(tmp_path, fed)
    payload = jsonc.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": "eu",
            "seq": 1,
            "prev": None,
            "hlc": f"{T0:013d}-0000",
            "manifest": 1,
            "author": "x",
            "ops": [],
        }
    )
    blob = jsonc.dumps(
        {
            "payloadType": CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "k" * 200_000, "sig": base64.b64encode(bytes(64)).decode()}],
        }
    )
    for _ in range(3):
        assert eu.receive(blob, source="mqtt", now_ms_=T0).status == "quarantined"
    row = eu.conn.execute("SELECT count, length(message), length(envelope) FROM quarantine").fetchone()
    assert row[0] == 3 and row[1] <= 1000 and row[2] <= len(blob)


def test_the_per_token_rate_limiter_forgets_idle_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read limiter keys on the token's jti, and a holder can mint session tokens at will (each sign-in
    is a new jti): the bucket map grew by one per token for ever.  Idle (full) buckets are forgotten,
    which changes no answer: a forgotten bucket comes back full."""
    from pocsync.api import peer

    now = [1000.0]
    monkeypatch.setattr(peer.time, "monotonic", lambda: now[0])
    lim = peer.RateLimiter(10)
    for i in range(50_000):
        assert lim.allow(f"jti-{i}")
        now[0] += 0.001
    assert len(lim.buckets) <= peer.RateLimiter.MAX_KEYS
    # a busy key is still limited
    results = [lim.allow("busy") for _ in range(100)]
    assert results.count(True) == 20 and not results[-1]
