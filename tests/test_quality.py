"""The codebase stays typed and lint-clean: mypy --strict and ruff run with the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_strict_passes_on_hub_spool_and_adapters() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_neither_sqlalchemy_nor_adapters_outside_the_composition_root() -> None:
    offenders = []
    for path in sorted((REPO / "hub").glob("*.py")):
        if path.name == "app.py":
            continue
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                word in stripped.split()[1] for word in ("sqlalchemy", "adapters", "spool")
            ) and "spoolcall" not in stripped:
                offenders.append(f"{path.name}: {stripped}")
    assert offenders == []
