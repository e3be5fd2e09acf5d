"""Forged history bundles (issue 16 part 2, hostile review): the independent verifier must refuse a bundle
whose signed ops are genuine but whose derived parts lie -- the diff a PoC reads (before/after values),
the order, the times, an entry re-typed (``1`` for ``true``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from pocsync.core.keys import ed25519_public_b64
from pocsync.directory import history as hist
from pocsync.store import Store
from tests.independent.bundle_verify import BundleError, verify_bundle
from tests.support.fed import T0, Fed, edit, put

FED = Fed()
KEY = "DEU/technical"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rep = FED.replica()
    edit(rep, FED, "eu", [put(KEY)], t=T0)
    edit(rep, FED, "osce", [put(KEY, emails=["cert-deu-osce@example.org"])], t=T0 + 1000)
    edit(rep, FED, "eu", [put(KEY, emails=["cert-deu-new@example.org"], available_24_7=True)], t=T0 + 2000)
    with Store.create(tmp_path_factory.mktemp("b") / "s.sqlite", node_id="un") as s:
        s.install_manifest(FED.manifest, now_ms_=T0)
        for env in rep.state.all_log():
            s.receive(env, now_ms_=T0 + 5000)
        return json.loads(json.dumps(hist.state_bundle(s, "DEU")))


ROOT = ed25519_public_b64(FED.roots[0])


def forged(b: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> bytes:
    c = copy.deepcopy(b)
    change(c)
    return json.dumps(c).encode()


def test_the_genuine_bundle_verifies(bundle: dict[str, Any]) -> None:
    out = verify_bundle(json.dumps(bundle).encode(), ROOT)
    assert out["ops"] == 3


def _lie_in_diff(c: dict[str, Any]) -> None:
    x = c["history"]["ops"][-1]
    ch = next(ch for ch in x["diff"]["changes"] if ch["field"] == "emails")
    ch["before"] = ["cert-deu-attacker@example.net"]  # the PoC would read that its mailbox was the attacker's


def _reorder(c: dict[str, Any]) -> None:
    c["history"]["ops"].reverse()


def _lie_in_time(c: dict[str, Any]) -> None:
    c["history"]["ops"][0]["time"] = "2020-01-01T00:00:00.000Z"


def _retype_entry(c: dict[str, Any]) -> None:
    c["history"]["ops"][-1]["entry"]["available_24_7"] = 1  # == True in Python, not in JSON


def _diff_against_other(c: dict[str, Any]) -> None:
    c["history"]["ops"][-1]["diff"]["against"] = None


def _other_state(c: dict[str, Any]) -> None:
    c["history"]["state"] = "FRA"


@pytest.mark.parametrize(
    "change", [_lie_in_diff, _reorder, _lie_in_time, _retype_entry, _diff_against_other, _other_state]
)
def test_a_bundle_with_lying_derived_parts_is_refused(bundle: dict[str, Any], change) -> None:
    with pytest.raises(BundleError):
        verify_bundle(forged(bundle, change), ROOT)


def test_an_op_whose_key_is_spelled_with_json_escapes_is_in_the_history(tmp_path) -> None:
    """Peers accept a payload that spells "DEU" as "\\u0044EU" (strict JSON, not canonical); the history's cheap
    byte filter looked for b"DEU" and left such a change-set out: an origin could change DEU's entry with
    nothing in DEU's audit trail (nor in its bundle, where the verifier only sees the change-sets given)."""
    from pocsync.core import changeset as csmod

    rep = FED.replica()
    edit(rep, FED, "eu", [put(KEY)], t=T0)
    seq, prev = rep.next_position("osce")
    hlc = f"{T0 + 1000:013d}-0000"
    e = {**put(KEY, emails=["hidden@example.net"])["entry"], "holder_epoch": hlc}
    payload = csmod.build_payload(
        origin="osce",
        seq=seq,
        prev=prev,
        hlc=hlc,
        manifest=FED.manifest.version,
        author="staff@osce",
        ops=[{"op": "put", "key": KEY, "entry": e}],
    )
    payload = payload.replace(b"DEU", b"\\u0044EU")
    assert b"DEU" not in payload
    out = rep.receive(csmod.sign(payload, keyid="osce:k1", key=FED.key("osce")), now_ms=T0 + 2000)
    assert out.status == "accepted" and rep.state.winner(KEY).origin == "osce"
    with Store.create(tmp_path / "s.sqlite", node_id="un") as s:
        s.install_manifest(FED.manifest, now_ms_=T0)
        for env in rep.state.all_log():
            s.receive(env, now_ms_=T0 + 5000)
        h = hist.state_history(s, "DEU")
        assert [x["origin"] for x in h["ops"]] == ["eu", "osce"]
        b = json.loads(json.dumps(hist.state_bundle(s, "DEU")))
    assert verify_bundle(json.dumps(b).encode(), ROOT)["ops"] == 2
