"""Sibling of the lone-surrogate defect (issue 10) in the logs: values a member signed (the op name and key
of a refused op, an unverified origin of a quarantined change-set) reach log messages.  Accepted on the
wire, they must not forge or split log lines: one record is one line, in text and in JSON."""

from __future__ import annotations

import json
import logging

import pytest

from pocsync.live.runtime import event
from pocsync.ops import logs

FORGED = "x\n2026-11-23 19:00:00,000 WARNING pocsync.live.runtime: EQUIVOCATION: eu signed two change-sets"
ODD = [FORGED, "a\rb", "line\u2028sep", "para\u2029x", "nel\x85x", "bidi\u202eevil", "nul\x00x", "esc\x1b[31m"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_record_is_one_line_whatever_a_member_signed(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(fmt, "INFO")
    try:
        for odd in ODD:
            event(
                "op_refused",
                "refused op %d (%s %s) of %s seq %s: %s",
                0,
                odd,
                odd,
                "eu",
                1,
                "unknown_op",
                origin="eu",
                seq=1,
                index=0,
                op=odd,
                key=odd,
                reason="unknown_op",
            )
    finally:
        logging.getLogger().handlers[:] = []
    err = capsys.readouterr().err
    lines = err.splitlines()  # str.splitlines also splits at U+0085, U+2028, U+2029, \x1c-\x1e
    assert len(lines) == len(ODD), lines
    assert not any("\x1b" in line or "\u202e" in line for line in lines)
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert [r["op"] for r in records] == ODD  # the fields keep the exact value, escaped
    else:
        assert "\\x0a2026-11-23" in lines[0]  # visible, not a new line
    assert sum("EQUIVOCATION" in line for line in lines) == 1


def test_tracebacks_keep_their_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("text", "INFO")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("pocsync").exception("failed for %s", "a\nb")
    finally:
        logging.getLogger().handlers[:] = []
    err = capsys.readouterr().err
    assert "failed for a\\x0ab" in err and "Traceback (most recent call last):\n" in err
