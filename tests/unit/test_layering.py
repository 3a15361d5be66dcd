"""What is deployed (rotation/) imports nothing that is not (the sandbox, the demo, bench)."""

from __future__ import annotations

import ast
from pathlib import Path

import rotation

NOT_DEPLOYED = ("sandbox", "demo", "bench", "tests")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_rotation_imports_nothing_that_is_not_deployed() -> None:
    package = Path(rotation.__file__).parent
    found = {
        f"{path.name} imports {name}"
        for path in package.glob("*.py")
        for name in _imported(path)
        if name.split(".")[0] in NOT_DEPLOYED
    }
    assert not found
    assert {"cli.py", "service.py", "engine.py"} <= {p.name for p in package.glob("*.py")}
