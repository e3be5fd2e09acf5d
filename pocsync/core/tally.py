"""Counting what a run of receives did (``log import``), from the core's typed outcomes.  Pure.

A change-set can be parked by one line and released by a later one — or by a later import: what
counts is its *last* outcome in this run.  So the tally keeps one status per change-set id and counts
those, and every count is a number of change-sets (never negative).  An unparseable line has no id:
each counts once, as quarantined.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pocsync.core.outcome import NOT_APPLIED, Outcome, Refusal, Status

STATUSES = tuple(Status)  # accepted, duplicate, parked, quarantined, equivocation


@dataclass
class Tally:
    final: dict[str, Outcome] = field(default_factory=dict)  # cs id (or a line marker) -> last outcome
    refused: list[Refusal] = field(default_factory=list)
    _anon: int = 0

    def add(self, out: Outcome) -> None:
        """Record one receive's outcome, with the parked change-sets it released."""
        for o in [out, *out.also_accepted]:
            if o.cs_id is None:
                self._anon += 1
                key = f"#{self._anon}"
            else:
                key = o.cs_id
            prev = self.final.get(key)
            if prev is not None and prev.status == Status.ACCEPTED:
                continue  # accepted earlier in this run: a later copy or report does not undo that
            self.final[key] = o
            self.refused.extend(o.refused)

    def counts(self) -> dict[Status, int]:
        """The number of change-sets per last outcome, for every :class:`Status` (zero included)."""
        c = Counter(o.status for o in self.final.values())
        return {s: c.get(s, 0) for s in STATUSES}

    def not_applied(self) -> list[Outcome]:
        """Change-sets whose last outcome is parked, quarantined or an equivocation."""
        return [o for o in self.final.values() if o.status in NOT_APPLIED]
