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


@pytest.mark.slow
def test_a_part_handed_one_spool_role_cannot_reach_another(tmp_path: Path) -> None:
    # The role ports are enforced by the type checker: the FTP pipeline's runner is a
    # SpoolThreads[BatchStore], so reaching intake's `accept` through it is an error.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from hub.ports import BatchStore\n"
        "from hub.spoolcall import SpoolThreads\n\n\n"
        "def sneak(runner: SpoolThreads[BatchStore]) -> None:\n"
        "    runner.spool.accept([])\n"
        "    runner.spool.update_batch  # its own role: fine\n", "utf-8")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                             "--follow-imports=silent", str(probe)], cwd=REPO,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 1, result.stdout
    assert '"BatchStore" has no attribute "accept"' in result.stdout
    assert result.stdout.count("error:") == 1, result.stdout
