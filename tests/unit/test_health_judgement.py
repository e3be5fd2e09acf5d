"""How health reads announcements and contacts (issue 9), as pure functions: a stale announcement
(lag) is told from a real divergence, and node status comes from the last contact over any transport."""

from __future__ import annotations

from types import SimpleNamespace

from pocsync.core.heads import HeadVector
from pocsync.live.runtime import Runtime
from pocsync.ops.health import _compare

OURS = {"eu": (5, "sha256:e5"), "osce": (2, "sha256:o2")}


def hv(heads: dict, digest: str = "sha256:d", hlc: str = "1763800000000-0000") -> HeadVector:
    return HeadVector(
        node="osce", hlc=hlc, manifest=1, heads=heads, digest=digest, refused=0, quarantined=0, equivocations=()
    )


def test_same_behind_ahead_and_diverged() -> None:
    assert _compare(OURS, "sha256:d", hv(dict(OURS)))["state"] == "same"
    stale = _compare(OURS, "sha256:d", hv({"eu": (3, "sha256:e3"), "osce": (2, "sha256:o2")}, "sha256:old"))
    assert stale == {"state": "behind", "behind": 2, "ahead": 0, "forks": []}
    assert _compare(OURS, "sha256:d", hv({"eu": (5, "sha256:e5"), "osce": (4, "x")}, "sha256:new"))["state"] == "ahead"
    # the same change-sets and another view: real divergence, not lag
    assert _compare(OURS, "sha256:d", hv(dict(OURS), "sha256:other"))["state"] == "diverged"
    fork = _compare(OURS, "sha256:d", hv({"eu": (5, "sha256:OTHER"), "osce": (2, "sha256:o2")}, "sha256:x"))
    assert fork["state"] == "diverged" and fork["forks"] == ["eu"]
    # same digest but the announcement lacks a change-set (one that changed nothing in the view): still lag
    assert _compare(OURS, "sha256:d", hv({"eu": (4, "sha256:e4"), "osce": (2, "sha256:o2")}))["state"] == "behind"


def runtime() -> Runtime:
    cfg = SimpleNamespace(sync=SimpleNamespace(pull_interval_seconds=30), mqtt=SimpleNamespace(url=""))
    return Runtime(nd=SimpleNamespace(node_id="un", config=cfg), worker=None)  # type: ignore[arg-type]


def test_node_status_online_offline_since_never_seen() -> None:
    rt = runtime()
    assert rt.node_state("eu")["state"] == "never seen"
    rt.contact_failed("eu", "ClientConnectorError: refused")  # failures before any contact: still never seen
    assert rt.node_state("eu")["state"] == "never seen" and rt.node_state("eu")["last_error"]
    rt.contact("eu", via="http")
    assert rt.node_state("eu")["state"] == "online"
    rt.contact_failed("eu", "ClientConnectorError: refused")
    first = rt.contacts["eu"].down_since
    rt.contact_failed("eu", "TimeoutError")
    st = rt.node_state("eu")
    assert st["state"] == "offline" and st["since"] == first and st["last_error"] == "TimeoutError"
    rt.contact("eu", via="poke")
    assert rt.node_state("eu")["state"] == "online"
    # no news for longer than three pull intervals: offline since the last contact
    last = rt.contacts["eu"].last_ok
    st = rt.node_state("eu", now=last + rt.online_window() + 1)
    assert st["state"] == "offline" and st["since"] == last
    rt.mqtt_status("arf", b"offline")  # retained "offline" of a node never heard from: offline, not never seen
    assert rt.node_state("arf")["state"] == "offline"
    rt.mqtt_status("osce", b"online")
    rt.mqtt_status("osce", b"offline")
    assert rt.node_state("osce")["state"] == "offline"


def test_an_older_announcement_never_replaces_a_newer_one() -> None:
    rt = runtime()
    rt.note_head(hv(dict(OURS), "sha256:new", hlc="1763800000500-0000"), via="poke")
    rt.note_head(hv({}, "sha256:old", hlc="1763800000100-0000"), via="http")  # a slow pull's older answer
    assert rt.announced_heads["osce"].digest == "sha256:new"
