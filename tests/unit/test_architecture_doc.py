"""docs/ARCHITECTURE.md stays true: every ``path/module.py:Name`` or ``path/module.py:Class.method`` it names
exists in pocsync/, and its layer line is the import-linter contract's (the one that scripts/test enforces)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
REF = re.compile(r"`((?!path/)[a-z_/]+\.py):([A-Za-z_][\w.]*)")


def _names(path: Path) -> set[str]:
    """Top-level functions, classes and assignments of a module, and Class.member for each class's members."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        if isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    out.add(f"{node.name}.{sub.name}")
                elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                    out.add(f"{node.name}.{sub.target.id}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Name):
                    out.add(t.id)
    return out


def _class_bases(path: Path) -> dict[str, list[str]]:
    return {
        n.name: [b.id for b in n.bases if isinstance(b, ast.Name)]
        for n in ast.parse(path.read_text()).body
        if isinstance(n, ast.ClassDef)
    }


def test_every_named_function_exists() -> None:
    refs = REF.findall(DOC)
    assert len(refs) > 50  # the document names the code it describes
    missing = []
    for rel, name in refs:
        path = ROOT / "pocsync" / rel
        if not path.is_file():
            missing.append(f"{rel} (no such file)")
            continue
        names = _names(path)
        if name in names:
            continue
        # Class.method where the method comes from a base class defined in the same package
        cls, _, member = name.partition(".")
        found = False
        if member:
            for other in path.parent.glob("*.py"):
                bases = _class_bases(path).get(cls, [])
                if any(f"{b}.{member}" in _names(other) for b in bases):
                    found = True
        if not found:
            missing.append(f"{rel}:{name}")
    assert not missing, "docs/ARCHITECTURE.md names code that does not exist: " + ", ".join(sorted(set(missing)))


def test_the_layer_line_is_the_contract() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in conf if c["type"] == "layers")
    assert layers["name"] in DOC
    line = " > ".join(x.replace("pocsync.", "").replace(" | ", "|") for x in layers["layers"])
    assert layers["name"] == f"Layers: {line}"
