"""Running `smshub` commands in-process for tests: hub.cli.main in a fresh hub directory
(no SMSHUB_ variables from outside, an optional hub.toml), each call answering its exit
code, its output (parsed when --json was given) and its stderr."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.cli import main

Run = Callable[..., tuple[int, Any, str]]


def hub_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str], toml: str = "") -> Run:
    for var in ("SMSHUB_CONFIG", "SMSHUB_HUB__DATA_DIR", "SMSHUB_SPOOL__URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    if toml:
        (tmp_path / "hub.toml").write_text(toml)

    def run(*argv: str) -> tuple[int, Any, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        out = json.loads(captured.out) if "--json" in argv and captured.out else captured.out
        return code, out, captured.err

    return run
