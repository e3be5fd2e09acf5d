"""The chaos scenario of CI: a short run of the harness (tests/chaos/harness.py) under a printed seed.

``CHAOS_SEED`` replays a seed, ``CHAOS_MINUTES`` changes the length (default 2). The long soak is
``scripts/chaos --minutes N``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.chaos.harness import Chaos

pytestmark = pytest.mark.slow


def test_short_chaos_run_loses_no_acknowledged_edit_and_converges(tmp_path: Path) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
    minutes = float(os.environ.get("CHAOS_MINUTES", "2"))
    print(f"\nchaos seed {seed} (replay: CHAOS_SEED={seed} or scripts/chaos --minutes {minutes:g} --seed {seed})")
    chaos = Chaos(tmp_path, seed, say=lambda m: print(m, flush=True))
    try:
        chaos.setup()
        summary = chaos.soak(minutes * 60, round_s=(15, 30))
    finally:
        chaos.teardown()
    print(json.dumps(summary, sort_keys=True))
    assert summary["acknowledged"] > 50 and sum(summary["faults"].values()) > 0
    assert summary["lost"] == 0
    assert summary["converge_s"]["n"] == summary["rounds"]
    assert chaos.violations == [], "\n".join(chaos.violations)
