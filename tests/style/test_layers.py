"""The layering of DESIGN.md, enforced: lower layers never import higher ones.

cli > runbook/report/audit > workflow > diagnose > parse > model; collect is used only by
cli, runbook, audit and workflow (and lab), never by parse, diagnose, report or model.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ipsec_doctor"

#: layer -> packages it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "model": ("collect", "parse", "diagnose", "report", "runbook", "cli", "workflow", "audit"),
    "parse": ("collect", "diagnose", "report", "runbook", "cli", "workflow", "audit"),
    "diagnose": ("collect", "report", "runbook", "cli", "workflow", "audit"),
    "report": ("collect", "runbook", "cli"),
    "collect": ("diagnose", "report", "runbook", "cli", "workflow", "audit"),
    "workflow": ("cli", "runbook", "report"),
    "lab": ("cli", "diagnose", "report", "runbook", "workflow", "audit"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return {m for m in found if m.startswith("ipsec_doctor.")}


CASES = [
    (layer, path)
    for layer in FORBIDDEN
    for path in sorted((PACKAGE / layer).rglob("*.py"))
    if (PACKAGE / layer).is_dir()
]


@pytest.mark.parametrize(("layer", "path"), CASES, ids=[f"{c[0]}:{c[1].name}" for c in CASES])
def test_layer_imports_only_lower_layers(layer: str, path: Path) -> None:
    bad = sorted(module for module in _imports(path) if module.split(".")[1] in FORBIDDEN[layer])
    assert not bad, f"{path.relative_to(PACKAGE.parent)} ({layer}) imports {bad}"
