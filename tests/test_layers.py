"""The core's layout follows the data flow: the import-linter contracts in pyproject.toml hold, and
they catch an upward import (issue #11: "fails when a test adds an upward import")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def copy_of_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "zoo", root / "zoo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract(copy_of_zoo: Path) -> None:
    result = lint(copy_of_zoo, copy_of_zoo / "pyproject.toml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, contract, edge", [
    ("zoo/registry/cards.py", "import zoo.cli", "layers follow the data flow",
     "zoo.registry is not allowed to import zoo.cli"),
    ("zoo/weights/cache.py", "from zoo.models import build", "layers follow the data flow",
     "zoo.weights is not allowed to import zoo.models"),
    ("zoo/claims/verify.py", "from zoo.tasks.classification import task", "the core holds no task",
     "zoo.claims is not allowed to import zoo.tasks"),
    ("zoo/errors.py", "import zoo.registry.cards", "base modules import no layer",
     "zoo.errors is not allowed to import zoo.registry"),
])
def test_an_upward_import_breaks_the_contract(copy_of_zoo: Path, module: str, line: str, contract: str,
                                              edge: str) -> None:
    path = copy_of_zoo / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{line}  # added by the test\n")
        result = lint(copy_of_zoo, copy_of_zoo / "pyproject.toml")
    finally:
        path.write_text(original)
    assert result.returncode == 1
    assert "Contracts: 2 kept, 1 broken." in result.stdout
    assert contract in result.stdout and edge in result.stdout
