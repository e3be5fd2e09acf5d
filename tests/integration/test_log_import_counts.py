"""``pocsync log import`` summary (issue 9): a change-set parked by one import and released by a later
one is counted as accepted by the later import — never ``parked = -1``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run
from tests.support.nodes import Federation, entry


def summary(output: str) -> dict[str, int]:
    lines = [ln for ln in output.splitlines() if ln.strip() and not set(ln.strip()) <= set("─━┃│┏┓┗┛┡┩└┘┌┐╇╈┳┻╍ ")]
    header = next(i for i, ln in enumerate(lines) if "accepted" in ln and "parked" in ln)
    names = [c.strip() for c in lines[header].replace("┃", "│").split("│") if c.strip()]
    values = [c.strip() for c in lines[header + 1].replace("┃", "│").split("│") if c.strip()]
    return dict(zip(names, map(int, values)))


def test_parked_then_released_by_a_later_import(tmp_path: Path) -> None:
    fed = Federation(tmp_path, ("eu", "osce"))
    for i in range(3):
        run(
            "entry",
            "put",
            "--data",
            fed["eu"].data,
            "-",
            "--author",
            "staff@eu",
            input=json.dumps([entry("DEU/technical", notes=f"rev {i}")]),
        )
    log = run("log", "export", "--data", fed["eu"].data).stdout_bytes.splitlines()
    assert len(log) == 3
    first = run("log", "import", "--data", fed["osce"].data, "-", input=log[2] + b"\n")
    assert summary(first.output) == {
        "accepted": 0,
        "duplicate": 0,
        "parked": 1,
        "quarantined": 0,
        "equivocation": 0,
        "refused ops": 0,
    }
    second = run("log", "import", "--data", fed["osce"].data, "-", input=b"\n".join(log[:2] + log[:1]) + b"\n")
    assert summary(second.output) == {
        "accepted": 3,
        "duplicate": 0,
        "parked": 0,
        "quarantined": 0,
        "equivocation": 0,
        "refused ops": 0,
    }
    assert fed["osce"].digest() == fed["eu"].digest()
