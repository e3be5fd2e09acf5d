"""An operator's peers table must become true soon after a peer comes up (issue 9).

Found trying it by hand: three nodes started one after another over HTTP; the first showed its
peers as "last pull: never", "Cannot connect" for a whole pull interval (30 s) after they were up,
because a failed peer was retried only at the next interval unless something woke the loop.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import Federation, wait_for

pytestmark = pytest.mark.slow


def _peers(url: str, token: str) -> dict:
    req = urllib.request.Request(url + "/v1/health", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["peers"]


def test_a_failed_peer_is_retried_on_its_backoff_not_the_next_interval(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=120, peers={"un": ["eu"]})
    try:
        fed.start("un")
        token = run("token", "issue", "--data", fed["un"].data, "--operator", "duty", "--days", "1").output.strip()
        eu_url = fed["eu"].url
        wait_for(
            lambda: (_peers(fed["un"].url, token).get(eu_url) or {}).get("last_error"),
            30,
            "un to record that eu cannot be reached",
        )
        fed.start("eu")
        t0 = time.monotonic()
        wait_for(
            lambda: (
                (p := _peers(fed["un"].url, token).get(eu_url) or {}).get("last_error") is None
                and p.get("last_pull_ok") is not None
            ),
            40,
            "un's peers table to show eu pulled",
        )
        assert time.monotonic() - t0 < 60  # far less than the 120 s pull interval
    finally:
        fed.stop()
