"""Hybrid logical clock (PROTOCOL.md §3).

An hlc is ``"<unix ms, 13 digits>-<counter, 4 digits>"`` and sorts as text.  When
the counter would pass 9999 the milliseconds advance instead.  A clock never
issues an hlc below one it has seen.  Time is injected: callers pass the wall
clock in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pocsync.errors import ProtocolError

HLC_RE = re.compile(r"^[0-9]{13}-[0-9]{4}\Z")
MAX_COUNTER = 9999
ZERO = "0000000000000-0000"


@dataclass(frozen=True, order=True)
class HLC:
    ms: int
    counter: int

    def __post_init__(self) -> None:
        if not (0 <= self.ms <= 9_999_999_999_999 and 0 <= self.counter <= MAX_COUNTER):
            raise ProtocolError(f"hlc out of range: {self.ms}-{self.counter}", reason="bad_hlc")

    def __str__(self) -> str:
        return f"{self.ms:013d}-{self.counter:04d}"

    @classmethod
    def parse(cls, text: object) -> HLC:
        if not isinstance(text, str) or not HLC_RE.match(text):
            raise ProtocolError(f"not an hlc (want 13 digits, '-', 4 digits): {text!r}", reason="bad_hlc")
        ms, counter = text.split("-")
        return cls(int(ms), int(counter))

    def successor(self) -> HLC:
        if self.counter < MAX_COUNTER:
            return HLC(self.ms, self.counter + 1)
        return HLC(self.ms + 1, 0)


def is_hlc(text: object) -> bool:
    return isinstance(text, str) and bool(HLC_RE.match(text))


def next_hlc(last: str | None, now_ms: int) -> str:
    """The hlc to issue now, given the greatest hlc this node has issued or seen.

    Result is strictly greater than ``last`` and not below the wall clock.
    """
    wall = HLC(now_ms, 0)
    if last is None:
        return str(wall)
    prev = HLC.parse(last)
    return str(wall if wall > prev else prev.successor())


def ahead_of_wall(text: str, now_ms: int, max_skew_ms: int) -> bool:
    """True when ``text`` lies more than ``max_skew_ms`` ahead of the wall clock."""
    return HLC.parse(text).ms > now_ms + max_skew_ms
