"""The simulator stays a pure kernel, and orchestration layers import one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BANNED_IN_SIM = {"ray", "hydra", "omegaconf", "pyarrow", "pandas", "polars", "duckdb", "matplotlib",
                 "seaborn", "migrc_sweep"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_sim_imports_no_orchestration_or_io_library():
    files = sorted((REPO / "sim").rglob("*.py"))
    assert files, "sim/ has no Python files"
    offenders = {str(f.relative_to(REPO)): sorted(imported_roots(f) & BANNED_IN_SIM) for f in files}
    assert {f: b for f, b in offenders.items() if b} == {}


@pytest.mark.parametrize("module, banned", [
    ("store.py", {"ray", "hydra", "omegaconf", "matplotlib", "seaborn"}),
    ("tasks.py", {"ray", "hydra", "omegaconf", "matplotlib", "seaborn"}),
    ("points.py", {"ray", "hydra", "omegaconf", "pyarrow", "matplotlib", "seaborn"}),
    ("figures.py", {"ray", "hydra", "omegaconf", "pyarrow"}),
    ("payoff.py", {"ray", "hydra", "omegaconf", "pyarrow"}),
    ("sweep.py", {"ray", "hydra", "omegaconf"}),
])
def test_orchestration_layers_import_one_way(module, banned):
    assert imported_roots(REPO / "migrc_sweep" / module) & banned == set()


def test_only_orchestration_modules_import_ray():
    users = {f.name for f in (REPO / "migrc_sweep").rglob("*.py") if "ray" in imported_roots(f)}
    assert users <= {"orchestrate.py", "ray_session.py"}
