"""The package's shape (issue 23): import contracts, no private names across modules, no import
hidden under TYPE_CHECKING, no oversized module.

The import-linter contracts live in pyproject.toml (``[tool.importlinter]``) and run in CI as
``lint-imports``; this runs them under pytest too, and checks that the contracts name each of
the five import circles the redesign removed (so none can come back unnoticed).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaqmoo"
#: the mapper developer's package is split separately (mapping/model/)
MAX_LINES = 650
LINE_LIMIT_EXEMPT = ("mapping",)


def modules() -> list[tuple[str, Path]]:
    """``(dotted name, path)`` of every module of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_lint_imports_keeps_every_contract():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_contracts_name_each_former_circle():
    """One contract per circle of issue 23 (the quant one waits, commented, for the training branch)."""
    by_id = {c.get("id"): c for c in contracts()}
    assert by_id["layers"]["type"] == "layers" and by_id["layers"]["exhaustive"] is True
    for cid, package in [("circle-templates", "jaqmoo.hardware.templates"), ("circle-models", "jaqmoo.models"),
                         ("circle-accuracy", "jaqmoo.experiment"), ("circle-sweep", "jaqmoo.sweep")]:
        assert by_id[cid]["type"] == "acyclic_siblings" and package in by_id[cid]["ancestors"], cid
    assert "circle-quant" in (ROOT / "pyproject.toml").read_text()
    assert by_id["no-circles"]["ancestors"] == ["jaqmoo"]


def test_no_private_name_imported_across_modules():
    bad = []
    for name, path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("jaqmoo"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and node.module != name:
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import {alias.name}")
    assert not bad, "\n".join(bad)


def test_no_import_under_type_checking():
    """Every import is a real one (import-linter sees them all): none hides under TYPE_CHECKING."""
    bad = []
    for _, path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "imports under TYPE_CHECKING: " + ", ".join(bad)


def test_no_module_over_the_line_limit():
    big = []
    for name, path in modules():
        if name.split(".")[1:2] and name.split(".")[1] in LINE_LIMIT_EXEMPT:
            continue
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not big, f"modules over {MAX_LINES} lines: " + ", ".join(big)


def test_moved_public_paths_still_work_with_a_warning():
    """The README's Python API paths keep working (the moved ones warn)."""
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "from jaqmoo.experiment import run_experiment\n"
            "from jaqmoo.report import load_run\n"
            "from jaqmoo.reporting.html import write_report\n"
            "from jaqmoo.hardware.templates import load_accelerator_spec\n"
            "from jaqmoo.cost import network_cost\n"
            "import jaqmoo.workload as w\n"
            "try:\n"
            "    w.model_workload('simple_cnn', (1, 8, 8), 10)\n"
            "except DeprecationWarning as exc:\n"
            "    print('warned:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warned: jaqmoo.workload.model_workload moved to jaqmoo.models.model_workload" in proc.stdout
