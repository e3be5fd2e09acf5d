"""``scripts/chaos``: run the chaos harness for N minutes; progress on stderr, ONE JSON line on stdout.

Exit code 0 when no invariant was violated, 1 otherwise. ``--seed`` replays a run's fault schedule.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.harness import FAULT_KINDS, Chaos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__)
    ap.add_argument("--minutes", type=float, default=5.0, help="how long to inject faults (default 5)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: random)")
    ap.add_argument("--kinds", default=",".join(FAULT_KINDS), help="fault kinds to draw from (comma-separated)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (stores, logs) at the end")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad:
        ap.error(f"unknown fault kind(s) {bad}; known: {', '.join(FAULT_KINDS)}")
    base = args.dir or Path(tempfile.mkdtemp(prefix=f"pocsync-chaos-{seed}-"))
    base.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    say(f"seed {seed} (replay: scripts/chaos --minutes {args.minutes:g} --seed {seed}); work folder {base}")
    chaos = Chaos(base, seed, say=say, kinds=kinds)
    started = time.monotonic()
    try:
        chaos.setup()
        say(f"federation up; disk fault: {chaos.tmpfs_note}")
        summary = chaos.soak(args.minutes * 60)
    finally:
        chaos.teardown()
    summary["minutes"] = round((time.monotonic() - started) / 60, 1)
    for v in chaos.violations:
        say("VIOLATION " + v)
    if args.keep or chaos.violations:
        say(f"work folder kept: {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 1 if chaos.violations else 0


if __name__ == "__main__":
    sys.exit(main())
