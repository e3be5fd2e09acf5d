"""The size habits of docs/ARCHITECTURE.md §6, checked: no function in pocsync/ over 60 lines (from its ``def``
line to its last line, decorators not counted), no module over 400 lines (``wc -l``)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "pocsync"
MAX_FUNCTION, MAX_MODULE = 60, 400


def test_no_function_over_60_lines() -> None:
    long = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION:
                    long.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "split by what the parts do: " + "; ".join(long)


def test_no_module_over_400_lines() -> None:
    big = [
        f"{p.relative_to(PKG.parent)} ({n} lines)"
        for p in sorted(PKG.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_MODULE
    ]
    assert not big, "split by what the parts hold: " + "; ".join(big)
