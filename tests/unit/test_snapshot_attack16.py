"""Hostile snapshots (issue 16 part 3, hostile review): characters that hide in a printed page, and a
snapshot dated in the future that would read as "taken 0 min ago" until its manifest expires."""

from __future__ import annotations

import time

import pytest

from pocsync.core import envelope as dsse
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64
from pocsync.directory import snapshot as snap
from tests.support.fed import Fed

HIDDEN = ["\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\U000e0041", "\u200b", "\u2060", "\u2063"]


@pytest.mark.parametrize("ch", HIDDEN)
def test_noncharacters_of_every_plane_and_invisible_characters_are_removed(ch: str) -> None:
    assert snap.clean_text(f"+49 30 1234{ch}5678") == "+49 30 12345678"


def test_tab_and_newline_become_a_space() -> None:
    assert snap.clean_text("Mon-Fri\n09:00\t17:00") == "Mon-Fri 09:00 17:00"


def container(fed: Fed, m: mf.Manifest, taken_ms: int, taken_at: str | None = None) -> bytes:
    payload = {
        "type": snap.SNAPSHOT_PAYLOAD,
        "node": "eu",
        "taken_at": taken_at or snap._utc(taken_ms),
        "taken_ms": taken_ms,
        "manifest": m.version,
        "manifest_id": m.id,
        "heads": {},
        "entries": [],
        "records": [],
        "digest": snap.digest_of({"entries": [], "records": []}),
    }
    env = dsse.sign(snap.SNAPSHOT_TYPE, jsonc.dumps(payload), "eu:k1", fed.keys["eu"]["k1"])
    return jsonc.dumps(
        {"format": snap.CONTAINER_FORMAT, "snapshot": env.to_bytes().decode(), "manifests": [m.to_bytes().decode()]}
    )


def test_a_snapshot_dated_in_the_future_is_refused() -> None:
    now_ms = int(time.time() * 1000)
    fed = Fed()
    root = ed25519_public_b64(fed.roots[0])
    m = fed.signed({**fed.manifest.payload, "expires": mf.format_time(now_ms // 1000 + 365 * 86_400)})
    with pytest.raises(snap.SnapshotError) as exc:
        snap.verify(container(fed, m, now_ms + 30 * 86_400_000), root)  # reads "0 min old" for a month
    assert exc.value.reason == "from_the_future"
    assert snap.verify(container(fed, m, now_ms - 1000), root).age_seconds >= 0


def test_the_independent_verifier_also_refuses_a_future_snapshot() -> None:
    from tests.independent.bundle_verify import BundleError
    from tests.independent.snapshot_verify import verify_snapshot

    now_ms = int(time.time() * 1000)
    fed = Fed()
    m = fed.signed({**fed.manifest.payload, "expires": mf.format_time(now_ms // 1000 + 365 * 86_400)})
    root = ed25519_public_b64(fed.roots[0])
    with pytest.raises(BundleError, match="future"):
        verify_snapshot(container(fed, m, now_ms + 30 * 86_400_000), root)
    assert verify_snapshot(container(fed, m, now_ms - 1000), root)["node"] == "eu"


def test_a_snapshot_whose_printed_time_is_not_its_signed_time_is_refused() -> None:
    """The page prints ``taken_at`` on every sheet; the age comes from ``taken_ms``: a year-old snapshot could
    print today's date."""
    now_ms = int(time.time() * 1000)
    fed = Fed()
    m = fed.signed({**fed.manifest.payload, "expires": mf.format_time(now_ms // 1000 + 365 * 86_400)})
    root = ed25519_public_b64(fed.roots[0])
    old = now_ms - 300 * 86_400_000
    with pytest.raises(snap.SnapshotError) as exc:
        snap.verify(container(fed, m, old, taken_at=snap._utc(now_ms)), root)
    assert exc.value.reason == "bad_snapshot" and "taken_at" in exc.value.message
    assert snap.verify(container(fed, m, old), root).payload["taken_ms"] == old


@pytest.mark.parametrize("taken_ms", [-(2**53 - 1), -1, True])
def test_a_nonsense_taken_ms_is_one_clear_error(taken_ms) -> None:
    now_ms = int(time.time() * 1000)
    fed = Fed()
    m = fed.signed({**fed.manifest.payload, "expires": mf.format_time(now_ms // 1000 + 365 * 86_400)})
    with pytest.raises(snap.SnapshotError):
        snap.verify(container(fed, m, taken_ms, taken_at="x"), ed25519_public_b64(fed.roots[0]))
