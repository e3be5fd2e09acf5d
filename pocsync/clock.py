"""The node's wall clock (ms since the epoch): the only place pocsync reads the time for protocol use.

For fault-injection tests only: when the environment variable ``POCSYNC_CLOCK_OFFSET_FILE`` names a
file, its content (an integer, milliseconds, may be negative) is added to the machine's clock. The
file is re-read when its modification time changes, so a test can make one node's clock jump forward
and back while it runs. A missing or unreadable file means no offset. Unset (production): no effect.
"""

from __future__ import annotations

import os
import time

ENV = "POCSYNC_CLOCK_OFFSET_FILE"
_cache: tuple[str, int, int] = ("", -1, 0)  # (path, mtime_ns, offset_ms)


def _offset_ms() -> int:
    global _cache
    path = os.environ.get(ENV)
    if not path:
        return 0
    try:
        mtime = os.stat(path).st_mtime_ns
        if (path, mtime) != _cache[:2]:
            with open(path, encoding="ascii") as f:
                _cache = (path, mtime, int(f.read().strip() or "0"))
        return _cache[2]
    except (OSError, ValueError):
        return 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000 + _offset_ms()
