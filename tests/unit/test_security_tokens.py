"""Issue 11, cases 5-8: tokens die with a delete or withdrawal by any origin, compared in milliseconds;
revocation, renewal limits and node-bound sessions; ``nbf`` honoured.  Tokens are real ES256 JWTs
checked by python-jose, and cross-checked with PyJWT (a second JOSE library)."""

from __future__ import annotations

from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwt as josejwt

from pocsync import tokens
from pocsync.store import Store
from tests.support.fed import T0, Fed, put

NOW_S = T0 // 1000


@pytest.fixture()
def fed() -> Fed:
    return Fed()


def make_store(tmp_path: Path, fed: Fed, node: str) -> Store:
    s = Store.create(tmp_path / f"{node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    return s


def edit(store: Store, fed: Fed, ops: list[dict], t: int) -> None:
    store.edit(ops, key=fed.key(store.node_id), author=f"staff@{store.node_id}", now_ms_=t)


def sync(a: Store, b: Store, t: int) -> None:
    for env in a.export():
        b.receive(env, now_ms_=t)


def issue(
    fed: Fed, *, at_ms: int, subject: str = "DEU/technical", issuer: str = "eu", ttl_s: int = 86_400, **kw
) -> str:
    return tokens.issue_token(
        issuer=issuer,
        kid=f"{issuer}:t1",
        key=fed.token[issuer],
        subject=subject,
        scope="directory",
        now_s=at_ms // 1000,
        now_ms=at_ms,
        ttl_s=ttl_s,
        **kw,
    )


def check(store: Store, fed: Fed, token: str, *, now_ms: int) -> tokens.Claims:
    claims = tokens.verify_signature(token, manifest=fed.manifest, now_s=now_ms // 1000)
    found = store.subject_state(claims.subject, claims.jti)
    state = tokens.SubjectState(found["entry"], found["dead_since"], found["revoked"])
    return tokens.TokenCache().verify(token, manifest=fed.manifest, now_s=now_ms // 1000, lookup_entry=lambda k: state)


def test_tokens_carry_millisecond_issue_time_readable_by_a_second_library(fed: Fed) -> None:
    tok = issue(fed, at_ms=T0 + 1234)
    public = (
        fed.token["eu"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = pyjwt.decode(tok, public, algorithms=["ES256"], audience="pocsync", options={"verify_exp": False})
    assert claims["iat_ms"] == T0 + 1234 and claims["iat"] == (T0 + 1234) // 1000
    assert claims["auth_time"] == claims["iat"]


def test_case5_withdrawal_by_another_region_kills_the_token_even_after_relisting(tmp_path: Path, fed: Fed) -> None:
    eu, osce = make_store(tmp_path, fed, "eu"), make_store(tmp_path, fed, "osce")
    edit(eu, fed, [put("DEU/technical")], T0)
    tok = issue(fed, at_ms=T0 + 1_000)
    assert check(eu, fed, tok, now_ms=T0 + 1_500).subject == "DEU/technical"
    sync(eu, osce, T0 + 1_600)
    edit(osce, fed, [{"op": "withdraw", "key": "DEU/technical"}], T0 + 2_000)
    sync(osce, eu, T0 + 2_500)
    edit(eu, fed, [put("DEU/technical")], T0 + 3_000)  # the origin re-lists the same holder
    assert eu.entry("DEU/technical") is not None
    with pytest.raises(tokens.TokenError) as exc:
        check(eu, fed, tok, now_ms=T0 + 4_000)
    assert exc.value.reason == "holder_changed"
    # every node decides alike, whatever the arrival order: osce learns eu's re-listing last
    sync(eu, osce, T0 + 4_000)
    with pytest.raises(tokens.TokenError):
        check(osce, fed, tok, now_ms=T0 + 4_000)
    assert check(eu, fed, issue(fed, at_ms=T0 + 5_000), now_ms=T0 + 5_000)  # a new token works


def test_case6_delete_and_recreate_within_the_same_second_kills_the_token(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed, "eu")
    edit(eu, fed, [put("DEU/technical")], T0)
    tok = issue(fed, at_ms=T0 + 100)
    edit(eu, fed, [{"op": "delete", "key": "DEU/technical"}], T0 + 200)
    edit(eu, fed, [put("DEU/technical", person=None)], T0 + 300)
    with pytest.raises(tokens.TokenError) as exc:
        check(eu, fed, tok, now_ms=T0 + 400)
    assert exc.value.reason == "holder_changed"
    assert check(eu, fed, issue(fed, at_ms=T0 + 500), now_ms=T0 + 600)


def test_case7_a_revoked_jti_is_refused_and_the_deny_list_expires(tmp_path: Path, fed: Fed) -> None:
    eu = make_store(tmp_path, fed, "eu")
    edit(eu, fed, [put("DEU/technical")], T0)
    tok = issue(fed, at_ms=T0 + 1_000)
    c = check(eu, fed, tok, now_ms=T0 + 2_000)
    eu.revoke_token(c.jti, exp=c.exp, reason="renewed", now_s=NOW_S)
    with pytest.raises(tokens.TokenError) as exc:
        check(eu, fed, tok, now_ms=T0 + 3_000)
    assert exc.value.reason == "revoked"
    eu.revoke_token("other", exp=c.exp + 10, reason="signed_out", now_s=c.exp + 1)  # purges expired rows
    assert [r[0] for r in eu.conn.execute("SELECT jti FROM revoked_tokens")] == ["other"]


def test_case7_renewals_keep_auth_time_and_stop_at_the_maximum_total_lifetime(fed: Fed) -> None:
    first = tokens.verify_signature(issue(fed, at_ms=T0), manifest=fed.manifest, now_s=NOW_S)
    t = NOW_S
    c = first
    for _ in range(40):  # renew daily
        t += 86_400
        try:
            tok = tokens.renew(
                c, issuer="eu", kid="eu:t1", key=fed.token["eu"], manifest=fed.manifest, now_s=t, ttl_s=86_400
            )
        except tokens.TokenError as exc:
            assert exc.reason == "renewal_limit"
            break
        c = tokens.verify_signature(tok, manifest=fed.manifest, now_s=t)
        assert c.auth_time == first.auth_time and c.exp <= first.auth_time + tokens.MAX_TOTAL_LIFETIME_S
    else:
        pytest.fail("renewals chained without limit")
    assert t - first.auth_time <= tokens.MAX_TOTAL_LIFETIME_S + 86_400


def test_case7_a_session_token_is_valid_only_as_a_cookie_of_the_node_that_set_it(fed: Fed) -> None:
    session = tokens.issue_token(
        issuer="eu",
        kid="eu:t1",
        key=fed.token["eu"],
        subject="DEU/technical",
        scope="directory",
        now_s=NOW_S,
        ttl_s=3600,
        audience=tokens.session_audience("eu"),
    )
    assert tokens.verify_session(session, node="eu", manifest=fed.manifest, now_s=NOW_S).issuer == "eu"
    with pytest.raises(tokens.TokenError) as exc:  # not a bearer token anywhere
        tokens.verify_signature(session, manifest=fed.manifest, now_s=NOW_S)
    assert exc.value.reason == "wrong_audience"
    with pytest.raises(tokens.TokenError):  # not a cookie at another node
        tokens.verify_session(session, node="osce", manifest=fed.manifest, now_s=NOW_S)


def test_case8_nbf_in_the_future_is_refused(fed: Fed) -> None:
    from cryptography.hazmat.primitives import serialization as ser

    pem = fed.token["eu"].private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()).decode()
    claims = {
        "iss": "eu",
        "sub": "operator:ops",
        "aud": "pocsync",
        "iat": NOW_S,
        "exp": NOW_S + 7200,
        "jti": "x",
        "scope": "health",
    }
    ok = josejwt.encode(claims | {"nbf": NOW_S}, pem, algorithm="ES256", headers={"kid": "eu:t1"})
    assert tokens.verify_signature(ok, manifest=fed.manifest, now_s=NOW_S).subject == "operator:ops"
    later = josejwt.encode(claims | {"nbf": NOW_S + 3600}, pem, algorithm="ES256", headers={"kid": "eu:t1"})
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify_signature(later, manifest=fed.manifest, now_s=NOW_S)
    assert exc.value.reason == "not_yet_valid"
    bad = josejwt.encode(claims | {"nbf": "soon"}, pem, algorithm="ES256", headers={"kid": "eu:t1"})
    with pytest.raises(tokens.TokenError):
        tokens.verify_signature(bad, manifest=fed.manifest, now_s=NOW_S)
