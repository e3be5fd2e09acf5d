"""Manifest trust rules: thresholds across rotations, rollback, gaps, expiry, history by seq."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64
from pocsync.errors import (
    ManifestError,
    ManifestExpiredError,
    ManifestGapError,
    ManifestRollbackError,
    ManifestThresholdError,
)
from tests.support.fed import DAY_S, T0, Fed

NOW = T0 // 1000


def test_v1_needs_threshold_of_its_own_roots() -> None:
    fed = Fed(n_roots=3, threshold=2)
    payload = fed.manifest.payload
    one = fed.signed(payload, roots=fed.roots[:1])
    with pytest.raises(ManifestThresholdError):
        mf.check_install(None, one, now_s=NOW)
    mf.check_install(None, fed.signed(payload, roots=fed.roots[:2]), now_s=NOW)


def test_unsigned_manifest_is_refused() -> None:
    fed = Fed()
    with pytest.raises(ManifestThresholdError):
        mf.check_install(None, mf.unsigned(fed.manifest.payload), now_s=NOW)


def test_root_rotation_needs_old_and_new_thresholds() -> None:
    fed = Fed(n_roots=3, threshold=2)
    v1 = fed.manifest
    new_roots = [Ed25519PrivateKey.generate() for _ in range(3)]
    p = mf.next_version(v1.payload)
    for r in new_roots:
        p = mf.add_root(p, ed25519_public_b64(r))
    for r in fed.roots:
        p = mf.remove_root(p, ed25519_public_b64(r))
    v2_payload = p
    only_new = fed.signed(v2_payload, roots=new_roots[:2])
    with pytest.raises(ManifestThresholdError, match="roots of v1"):
        mf.check_install(v1, only_new, now_s=NOW)
    only_old = fed.signed(v2_payload, roots=fed.roots[:2])
    with pytest.raises(ManifestThresholdError):
        mf.check_install(v1, only_old, now_s=NOW)
    both = fed.signed(v2_payload, roots=fed.roots[:2] + new_roots[:2])
    mf.check_install(v1, both, now_s=NOW)


def test_rollback_replay_and_gap_are_refused() -> None:
    fed = Fed()
    v1 = fed.manifest
    v2 = fed.signed(mf.next_version(v1.payload))
    v3 = fed.signed(mf.next_version(v2.payload))
    mf.check_install(v1, v2, now_s=NOW)
    with pytest.raises(ManifestRollbackError):
        mf.check_install(v2, v1, now_s=NOW)
    with pytest.raises(ManifestRollbackError, match="already installed"):
        mf.check_install(v2, v2, now_s=NOW)
    with pytest.raises(ManifestGapError) as exc:
        mf.check_install(v1, v3, now_s=NOW)
    assert exc.value.detail["missing"] == [2]


def test_expired_manifest_is_refused() -> None:
    fed = Fed()
    with pytest.raises(ManifestExpiredError):
        mf.check_install(None, fed.manifest, now_s=NOW + 366 * DAY_S)
    assert fed.manifest.is_expired(NOW + 366 * DAY_S) and not fed.manifest.is_expired(NOW)


def test_tampered_payload_invalidates_signatures() -> None:
    fed = Fed()
    env = fed.manifest.envelope
    tampered = mf.from_payload(fed.manifest.payload, type(env)(env.payload_type, env.payload + b" ", env.signatures))
    with pytest.raises(ManifestThresholdError):
        mf.check_self_signed(tampered)


def test_key_ranges_scope_steps_removal_and_segments() -> None:
    fed = Fed()
    pub2 = fed.new_key("eu", "k2")
    p = mf.rotate_key(fed.manifest.payload, "eu", name="k2", public=pub2, from_seq=5)
    p = mf.set_scope(p, "eu", states=["DEU"], from_seq=8)
    p = mf.remove_node(p, "arf", at_seq=3)
    pub3 = fed.new_key("osce", "k2")
    p = mf.restart_chain(p, "osce", name="k2", public=pub3, from_seq=20, prev=None)
    m = mf.unsigned(p)
    eu = m.nodes["eu"]
    assert eu.key_for("k1", 4) is not None and eu.key_for("k1", 5) is None
    assert eu.key_for("k2", 4) is None and eu.key_for("k2", 500) is not None
    assert eu.covers("FRA", 7) and not eu.covers("FRA", 8) and eu.covers("DEU", 8)
    assert m.nodes["arf"].key_for("k1", 3) is not None and m.nodes["arf"].key_for("k1", 4) is None
    assert "arf" not in m.members()
    osce = m.nodes["osce"]
    assert osce.segment(19) == mf.Restart(1, None) and osce.segment(20) == mf.Restart(20, None)
    assert osce.key_for("k1", 19) is not None and osce.key_for("k1", 20) is None
    assert m.nodes["un"].covers("ZZZ", 1)


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: mf.set_threshold(p, 5),
        lambda p: mf.parse_scope("DEU,xx"),
        lambda p: mf.add_node(p, {"node": "Bad Id"}, role="regional", scope="all"),
        lambda p: mf.rotate_key(p, "nope", name="k2", public="AAAA", from_seq=1),
    ],
)
def test_bad_edits_name_the_problem(edit) -> None:
    fed = Fed()
    with pytest.raises(ManifestError):
        edit(fed.manifest.payload)


def test_parse_round_trip_and_strictness() -> None:
    fed = Fed()
    again = mf.parse(fed.manifest.to_bytes())
    assert again.id == fed.manifest.id and again.version == 1 and set(again.nodes) == set(fed.scopes)
    with pytest.raises(ManifestError):
        mf.parse(b'{"payloadType": "application/vnd.pocsync.changeset+json", "payload": "", "signatures": []}')
